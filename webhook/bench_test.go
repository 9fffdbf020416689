package webhook_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// BenchmarkAdmission measures pod creation through the real API server (dry run, so nothing
// is stored) with the webhooks registered: a kernel pod, which the mutating and validating
// webhooks both see, against an ordinary pod, which never reaches them. The difference is the
// webhooks' cost on the admission path.
func BenchmarkAdmission(b *testing.B) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		pod  func(i int) *corev1.Pod
	}{
		{"kernel-pod", func(i int) *corev1.Pod { return kernelPodFor("team-a", fmt.Sprintf("bench-%d", i), "absent") }},
		{"ordinary-pod", func(i int) *corev1.Pod {
			return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("plain-%d", i), Namespace: "team-a"},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var d []time.Duration
			i := 0
			for b.Loop() {
				start := time.Now()
				if err := env.Client.Create(ctx, tc.pod(i), client.DryRunAll); err != nil {
					b.Fatal(err)
				}
				d = append(d, time.Since(start))
				i++
			}
			sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
			b.ReportMetric(float64(d[len(d)/2].Microseconds())/1000, "ms/p50")
			b.ReportMetric(float64(d[(len(d)-1)*99/100].Microseconds())/1000, "ms/p99")
		})
	}
}
