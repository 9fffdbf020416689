package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"path"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

// GPUs implements Provisioner: the GPUs the kernel's pod holds, as its status says.
func (k *Kubernetes) GPUs(ctx context.Context, id string) int {
	jk, err := k.getKernel(ctx, id)
	if err != nil {
		return 0
	}
	return int(jk.Status.GPUs)
}

// State implements Provisioner: a kernel keeps its variables where its current pod mounts its
// kernelspec's state volume, as the controller reports in status.state.
func (k *Kubernetes) State(ctx context.Context, id string) (StateLocation, bool) {
	jk, err := k.getKernel(ctx, id)
	if err != nil || jk.Status.State == nil || jk.Status.State.Volume == "" {
		return StateLocation{}, false
	}
	st := jk.Status.State
	return StateLocation{
		Helper: ejv1.StateHelperPath, File: path.Join(ejv1.StateMountPath, launcher.StateFileName(id)),
		MaxBytes: st.MaxBytes, Saved: st.Saved, Message: st.Message,
	}, true
}

// RecordState implements Provisioner: status.state says whether a snapshot waits and what it
// kept, and a kernel with a snapshot carries ejv1.StateFinalizer, so the controller removes
// the snapshot before a deleted kernel goes.
func (k *Kubernetes) RecordState(ctx context.Context, id string, o StateOutcome) error {
	state := map[string]any{"saved": o.Saved, "bytes": o.Bytes, "message": o.Message}
	if o.Saved {
		state["savedAt"] = metav1.Now()
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]any{"state": state}})
	if err != nil {
		return err
	}
	jk := &ejv1.JupyterKernel{}
	jk.Name, jk.Namespace = id, k.kernelNs
	if err := k.client.Status().Patch(ctx, jk, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("recording the state of kernel %s: %w", id, err)
	}
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur := &ejv1.JupyterKernel{}
		if err := k.direct.Get(ctx, k.kernelKey(id), cur); err != nil {
			return err
		}
		changed := controllerutil.AddFinalizer(cur, ejv1.StateFinalizer)
		if !o.Saved {
			changed = controllerutil.RemoveFinalizer(cur, ejv1.StateFinalizer)
		}
		if !changed {
			return nil
		}
		return k.client.Update(ctx, cur)
	})
}
