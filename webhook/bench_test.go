package webhook_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// BenchmarkAdmission measures creating a pod through the real API server with the webhooks
// registered, and reports the p50 and p99 latency of one create. A kernel pod (with a 1-GPU
// kernelspec) goes through the mutating and the validating webhook over TLS; an ordinary pod,
// the baseline, never reaches them. The difference is the webhooks' cost on the admission path.
// The creates are dry runs: the whole admission chain runs, nothing is stored or scheduled.
func BenchmarkAdmission(b *testing.B) {
	ctx := context.Background()
	ks := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: "bench-gpu", Namespace: "team-a"}}
	ks.Spec.Image = "python:3"
	ks.Spec.Command = ipykernel
	ks.Spec.Resources = &ejv1.KernelResources{GPUs: ptr.To[int32](1)}
	if err := env.Client.Create(ctx, ks); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pod  func(i int) *corev1.Pod
	}{
		{"kernel-pod", func(i int) *corev1.Pod { return kernelPodFor("team-a", fmt.Sprintf("bench-%d", i), "bench-gpu") }},
		{"ordinary-pod", func(i int) *corev1.Pod {
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("plain-%d", i), Namespace: "team-a"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sleep", "1"}}}}}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var d []time.Duration
			i := 0
			for b.Loop() {
				pod := tc.pod(i)
				start := time.Now()
				if err := env.Client.Create(ctx, pod, client.DryRunAll); err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(start))
				if tc.name == "kernel-pod" && len(pod.Spec.InitContainers) != 1 {
					b.Fatal("the kernel pod was not mutated")
				}
				i++
			}
			slices.Sort(d)
			b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "ms/p50")
			b.ReportMetric(float64(d[(len(d)-1)*99/100].Microseconds())/1000, "ms/p99")
		})
	}
}
