package gateway

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

// pollInterval is how often a waiting start looks at its JupyterKernel in the cache.
const pollInterval = 100 * time.Millisecond

func (k *Kubernetes) kernelKey(id string) types.NamespacedName {
	return types.NamespacedName{Namespace: k.kernelNs, Name: id}
}

// getKernel returns a kernel of this gateway from the cache.
func (k *Kubernetes) getKernel(ctx context.Context, id string) (*ejv1.JupyterKernel, error) {
	jk := &ejv1.JupyterKernel{}
	if err := k.client.Get(ctx, k.kernelKey(id), jk); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("kernel %s: %w", id, ErrNotFound)
		}
		return nil, err
	}
	if !k.owns(jk) {
		return nil, fmt.Errorf("kernel %s belongs to another gateway: %w", id, ErrNotFound)
	}
	return jk, nil
}

// owns reports whether a JupyterKernel is this gateway's: two gateways never manage the same
// kernels.
func (k *Kubernetes) owns(jk *ejv1.JupyterKernel) bool {
	return jk.Labels[ejv1.LabelGateway] == k.name && jk.Annotations[ejv1.AnnotationGatewayNamespace] == k.ns
}

// Start implements Provisioner: it creates a JupyterKernel and waits until its pod is ready.
// On failure or timeout the JupyterKernel is deleted, so nothing is left half-created.
func (k *Kubernetes) Start(ctx context.Context, req StartRequest) (*Instance, error) {
	names := make([]string, 0, len(req.Env))
	for n := range req.Env {
		names = append(names, n)
	}
	sort.Strings(names)
	env := make([]corev1.EnvVar, 0, len(names)+1)
	for _, n := range names {
		env = append(env, corev1.EnvVar{Name: n, Value: req.Env[n]})
	}
	jk := &ejv1.JupyterKernel{
		ObjectMeta: metav1.ObjectMeta{
			Name: req.ID, Namespace: k.kernelNs,
			Labels: map[string]string{
				ejv1.LabelGateway: k.name, ejv1.LabelKernelSpec: req.Spec.Name,
				ejv1.LabelManagedBy: ejv1.ManagedBy,
			},
			Annotations: map[string]string{ejv1.AnnotationGatewayNamespace: k.ns},
		},
		Spec: ejv1.JupyterKernelCRDSpec{
			KernelSpec: &ejv1.ObjectRef{Name: req.Spec.Name, Namespace: k.ns},
			Gateway:    &ejv1.ObjectRef{Name: k.name, Namespace: k.ns},
			User:       req.User,
			Env:        env,
		},
	}
	if err := k.client.Create(ctx, jk); err != nil {
		return nil, fmt.Errorf("creating JupyterKernel %s/%s: %w", k.kernelNs, req.ID, err)
	}
	k.log.Info("kernel created", "kernel", req.ID, "namespace", k.kernelNs, "kernelspec", req.Spec.Name)
	info, err := k.waitRunning(ctx, req.ID)
	if err != nil {
		// Nothing half-created: the pod and Secret go with the kernel.
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if derr := k.client.Delete(dctx, jk); derr != nil && !apierrors.IsNotFound(derr) {
			k.log.Error("deleting a kernel that failed to start", "kernel", req.ID, "err", derr.Error())
		}
		return nil, err
	}
	return &Instance{ID: req.ID, SpecName: req.Spec.Name, InterruptMode: req.Spec.InterruptMode, Info: info}, nil
}

// waitRunning waits until the kernel's phase is Running with a pod IP, then returns its
// connection info; a Failed kernel ends the wait with its reason.
func (k *Kubernetes) waitRunning(ctx context.Context, id string) (*jupyter.ConnectionInfo, error) {
	var last *ejv1.JupyterKernel
	for {
		jk, err := k.getKernel(ctx, id)
		switch {
		case errors.Is(err, ErrNotFound) && last != nil:
			return nil, fmt.Errorf("kernel %s was deleted while starting", id)
		case err != nil && !errors.Is(err, ErrNotFound):
			return nil, err
		case err == nil:
			last = jk
			switch jk.Status.Phase {
			case ejv1.KernelRunning:
				if jk.Status.PodIP != "" && !jk.Spec.Suspend {
					info, err := k.connectionInfo(ctx, jk)
					if err == nil && listens(info) {
						return info, nil
					}
				}
			case ejv1.KernelFailed, ejv1.KernelSucceeded:
				return nil, fmt.Errorf("kernel %s %s: %s: %s", id, strings.ToLower(string(jk.Status.Phase)), jk.Status.Reason, jk.Status.Message)
			}
		}
		select {
		case <-ctx.Done():
			why := "not created yet"
			if last != nil {
				why = fmt.Sprintf("%s (%s: %s)", last.Status.Phase, last.Status.Reason, last.Status.Message)
			}
			return nil, fmt.Errorf("kernel %s is still %s: %w", id, why, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// connectionInfo reads the kernel's connection Secret and points it at the pod's IP.
func (k *Kubernetes) connectionInfo(ctx context.Context, jk *ejv1.JupyterKernel) (*jupyter.ConnectionInfo, error) {
	secret := &corev1.Secret{}
	key := types.NamespacedName{Namespace: jk.Namespace, Name: ejv1.ConnectionSecretName(jk.Name)}
	if err := k.direct.Get(ctx, key, secret); err != nil {
		return nil, fmt.Errorf("reading the connection secret of kernel %s: %w", jk.Name, err)
	}
	info, err := jupyter.ParseConnectionInfo(secret.Data[ejv1.ConnectionFileKey])
	if err != nil {
		return nil, fmt.Errorf("the connection secret of kernel %s: %w", jk.Name, err)
	}
	info.IP = jk.Status.PodIP
	return info, nil
}

// launcherClient reaches the kernel launcher in the kernel's pod.
func (k *Kubernetes) launcherClient(ctx context.Context, id string) (*launcher.Client, error) {
	jk, err := k.getKernel(ctx, id)
	if err != nil {
		return nil, err
	}
	if jk.Status.PodIP == "" {
		return nil, fmt.Errorf("kernel %s has no running pod", id)
	}
	info, err := k.connectionInfo(ctx, jk)
	if err != nil {
		return nil, err
	}
	return launcher.NewClient(jk.Status.PodIP, launcher.DefaultControlPort, info.Key), nil
}

// Interrupt implements Provisioner, through the kernel launcher.
func (k *Kubernetes) Interrupt(ctx context.Context, id string) error {
	c, err := k.launcherClient(ctx, id)
	if err != nil {
		return err
	}
	return c.Interrupt(ctx)
}

// Restart implements Provisioner: the launcher restarts the kernel in its pod (same ports,
// GPU kept).
func (k *Kubernetes) Restart(ctx context.Context, id string) (*jupyter.ConnectionInfo, error) {
	c, err := k.launcherClient(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := c.Restart(ctx); err != nil {
		return nil, err
	}
	jk, err := k.getKernel(ctx, id)
	if err != nil {
		return nil, err
	}
	return k.connectionInfo(ctx, jk)
}

// setSuspend patches spec.suspend.
func (k *Kubernetes) setSuspend(ctx context.Context, id string, suspend bool) error {
	jk, err := k.getKernel(ctx, id)
	if err != nil {
		return err
	}
	patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"suspend":%t}}`, suspend)))
	if err := k.client.Patch(ctx, jk, patch); err != nil {
		return fmt.Errorf("setting spec.suspend=%t on kernel %s: %w", suspend, id, err)
	}
	return nil
}

// Suspend implements Provisioner: spec.suspend=true; the controller deletes the pod.
func (k *Kubernetes) Suspend(ctx context.Context, id string) error {
	if err := k.setSuspend(ctx, id, true); err != nil {
		return err
	}
	k.log.Info("kernel suspended", "kernel", id)
	return nil
}

// Resume implements Provisioner: spec.suspend=false, then wait for the fresh pod.
func (k *Kubernetes) Resume(ctx context.Context, id string) (*jupyter.ConnectionInfo, error) {
	if err := k.setSuspend(ctx, id, false); err != nil {
		return nil, err
	}
	// Wait until the cache has seen the change, so a stale Running status is not mistaken
	// for the new pod.
	for {
		jk, err := k.getKernel(ctx, id)
		if err != nil {
			return nil, err
		}
		if !jk.Spec.Suspend {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pollInterval):
		}
	}
	return k.waitRunning(ctx, id)
}

// Shutdown implements Provisioner: deletes the JupyterKernel (its pod and Secret follow).
func (k *Kubernetes) Shutdown(ctx context.Context, id string) error {
	jk, err := k.getKernel(ctx, id)
	if err != nil {
		return err
	}
	k.reports.forget(id)
	if err := k.client.Delete(ctx, jk, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting kernel %s: %w", id, err)
	}
	return nil
}

// Alive implements Provisioner: the kernel exists and has not failed or ended.
func (k *Kubernetes) Alive(ctx context.Context, id string) bool {
	jk, err := k.getKernel(ctx, id)
	if err != nil {
		return false
	}
	return !isEnded(jk.Status.Phase)
}

func isEnded(p ejv1.KernelPhase) bool { return p == ejv1.KernelFailed || p == ejv1.KernelSucceeded }

// Restore implements Provisioner: every JupyterKernel of this gateway, running ones with their
// connection info; the others (suspended, or still starting when the gateway went down) come
// back as suspended, so the next message brings them up.
func (k *Kubernetes) Restore(ctx context.Context) ([]*Instance, error) {
	list := &ejv1.JupyterKernelList{}
	if err := k.client.List(ctx, list, client.InNamespace(k.kernelNs), client.MatchingLabels{ejv1.LabelGateway: k.name}); err != nil {
		return nil, fmt.Errorf("listing kernels: %w", err)
	}
	var out []*Instance
	for i := range list.Items {
		jk := &list.Items[i]
		if !k.owns(jk) || jk.DeletionTimestamp != nil {
			continue
		}
		inst := &Instance{ID: jk.Name, SpecName: jk.Labels[ejv1.LabelKernelSpec]}
		if jk.Spec.KernelSpec != nil {
			inst.SpecName = jk.Spec.KernelSpec.Name
			if s := k.specInterruptMode(ctx, jk.Spec.KernelSpec.Name); s != "" {
				inst.InterruptMode = s
			}
		}
		if jk.Status.LastActivity != nil {
			inst.LastActivity = jk.Status.LastActivity.Time
		}
		switch {
		case jk.Status.Phase == ejv1.KernelRunning && !jk.Spec.Suspend && jk.Status.PodIP != "":
			info, err := k.connectionInfo(ctx, jk)
			if err != nil {
				return nil, err
			}
			inst.Info = info
		case isEnded(jk.Status.Phase):
			// Left for the culler, which removes dead kernels at once.
		default:
			inst.Suspended = true
		}
		out = append(out, inst)
	}
	return out, nil
}

func (k *Kubernetes) specInterruptMode(ctx context.Context, name string) string {
	s := &ejv1.JupyterKernelSpec{}
	if err := k.client.Get(ctx, types.NamespacedName{Namespace: k.ns, Name: name}, s); err != nil {
		return ""
	}
	return string(s.Spec.InterruptMode)
}
