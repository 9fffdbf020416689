package gateway

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// reporter batches kernel activity into throttled status writes.
type reporter struct {
	mu      sync.Mutex
	pending map[string]Activity
	written map[string]written
}

type written struct {
	a  Activity
	at time.Time
}

func (r *reporter) init() {
	r.pending = map[string]Activity{}
	r.written = map[string]written{}
}

func (r *reporter) forget(id string) {
	r.mu.Lock()
	delete(r.pending, id)
	delete(r.written, id)
	r.mu.Unlock()
}

// Report implements Provisioner: the activity is written to the kernel's status by Run, at
// once when the execution state or connections changed, else at most every ReportInterval.
func (k *Kubernetes) Report(id string, a Activity) {
	k.reports.mu.Lock()
	k.reports.pending[id] = a
	k.reports.mu.Unlock()
}

// due returns the activities to write now.
func (r *reporter) due(now time.Time, interval time.Duration) map[string]Activity {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]Activity{}
	for id, a := range r.pending {
		w, seen := r.written[id]
		changed := !seen || w.a.ExecutionState != a.ExecutionState || w.a.Connections != a.Connections
		advanced := a.LastActivity.Sub(w.a.LastActivity) >= time.Second
		if changed || (advanced && now.Sub(w.at) >= interval) {
			out[id] = a
			delete(r.pending, id)
		}
	}
	return out
}

func (r *reporter) done(id string, a Activity, at time.Time) {
	r.mu.Lock()
	r.written[id] = written{a: a, at: at}
	r.mu.Unlock()
}

// Run writes reported activity until ctx ends.
func (k *Kubernetes) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for id, a := range k.reports.due(now, k.interval) {
				if err := k.writeActivity(ctx, id, a); err != nil {
					k.log.Debug("writing kernel activity", "kernel", id, "err", err.Error())
					continue
				}
				k.reports.done(id, a, now)
			}
		}
	}
}

// writeActivity merge-patches the activity fields of the kernel's status, and nothing else.
func (k *Kubernetes) writeActivity(ctx context.Context, id string, a Activity) error {
	patch, err := json.Marshal(map[string]any{"status": map[string]any{
		"lastActivity":   metav1.NewTime(a.LastActivity.Truncate(time.Second)),
		"executionState": a.ExecutionState,
		"connections":    a.Connections,
	}})
	if err != nil {
		return err
	}
	jk := &ejv1.JupyterKernel{}
	jk.Name, jk.Namespace = id, k.kernelNs
	return k.client.Status().Patch(ctx, jk, client.RawPatch(types.MergePatchType, patch))
}
