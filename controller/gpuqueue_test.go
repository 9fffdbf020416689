package controller_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// queueResource is a GPU resource no other test uses, so this test's node is the only one
// that offers it.
const queueResource corev1.ResourceName = "example.com/queue-gpu"

// gatedKernelPod is a kernel pod as the webhook leaves one that asks for GPUs: gated by the
// GPU queue.
func gatedKernelPod(ns, name string, gpus int64) *corev1.Pod {
	q := *resource.NewQuantity(gpus, resource.DecimalSI)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
			ejv1.LabelComponent: ejv1.ComponentKernel, ejv1.LabelManagedBy: ejv1.ManagedBy, ejv1.LabelKernelID: name,
		}},
		Spec: corev1.PodSpec{
			SchedulingGates: []corev1.PodSchedulingGate{{Name: ejv1.GPUQueueGate}},
			Containers: []corev1.Container{{Name: "kernel", Image: "kernel", Command: []string{"k"},
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{queueResource: q}, Requests: corev1.ResourceList{queueResource: q}}}},
		},
	}
}

func gateOf(t *testing.T, ns, name string) bool {
	t.Helper()
	p := &corev1.Pod{}
	require.NoError(t, k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, p))
	return len(p.Spec.SchedulingGates) > 0
}

// TestGPUQueueReleasesKernelPodsFirstComeFirstServed: on a node with 2 GPUs, one held by
// another workload, three GPU kernels arrive; the first goes to the scheduler, the others
// wait in arrival order, and the next goes when the other workload gives its GPU back.
func TestGPUQueueReleasesKernelPodsFirstComeFirstServed(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	testenv.ReadyNode(t, k8s, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "queue-gpu-node"}}, corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourcePods: resource.MustParse("110"), queueResource: resource.MustParse("2"),
	})
	// Another workload on the node holds one of the GPUs.
	other := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "training-job", Namespace: ns},
		Spec: corev1.PodSpec{NodeName: "queue-gpu-node", Containers: []corev1.Container{{Name: "c", Image: "x",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{queueResource: resource.MustParse("1")}}}}},
	}
	require.NoError(t, k8s.Create(ctx, other))

	// Asked for one after another (the controller's annotation, in nanoseconds): the names
	// sort the other way, and the creation seconds may be equal.
	base := time.Now()
	for i, name := range []string{"k3-first", "k2-second", "k1-third"} {
		p := gatedKernelPod(ns, name, 1)
		p.Annotations = map[string]string{ejv1.AnnotationRequestedAt: base.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano)}
		require.NoError(t, k8s.Create(ctx, p))
	}
	require.Eventually(t, func() bool { return !gateOf(t, ns, "k3-first") }, time.Minute, 50*time.Millisecond, "the first kernel goes to the scheduler")
	assert.True(t, gateOf(t, ns, "k2-second"), "the second waits: the free GPU is the first's")
	assert.True(t, gateOf(t, ns, "k1-third"))

	require.NoError(t, k8s.Delete(ctx, other, client.GracePeriodSeconds(0)))
	require.Eventually(t, func() bool { return !gateOf(t, ns, "k2-second") }, time.Minute, 50*time.Millisecond, "the GPU given back goes to the second")
	assert.True(t, gateOf(t, ns, "k1-third"), "the third still waits: both GPUs are taken (the first is on its way)")

	// The first kernel ends: its GPU goes to the third.
	require.NoError(t, k8s.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "k3-first"}}, client.GracePeriodSeconds(0)))
	require.Eventually(t, func() bool { return !gateOf(t, ns, "k1-third") }, time.Minute, 50*time.Millisecond)
}

// TestKernelPastItsStartDeadlineFails: a kernel whose pod does not become ready within
// spec.startDeadlineSeconds fails with the reason it was waiting for, and its pod goes.
func TestKernelPastItsStartDeadlineFails(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	k := kernelFixture(t, ns, "2f9a8b7c-6d5e-4f3a-8b2c-1d0e9f8a7b6c")
	k.Spec.StartDeadlineSeconds = ptr.To[int32](2)
	require.NoError(t, k8s.Create(ctx, k))
	pod := kernelPod(t, k, "")
	kubeletStatus(t, pod, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
			Message: "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."}}
	})
	k = kernelIn(t, k, phaseIs(ejv1.KernelFailed), "the kernel fails at its start deadline")
	assert.Equal(t, "StartDeadlineExceeded", k.Status.Reason)
	assert.Contains(t, k.Status.Message, "did not start within 2s")
	assert.Contains(t, k.Status.Message, "Insufficient nvidia.com/gpu", "the message says what it waited for")
	assert.Contains(t, k.Status.Message, "ask for fewer resources", "and what to do")
	gone(t, ns, pod.Name, &corev1.Pod{})
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(k), k))
	assert.Equal(t, ejv1.KernelFailed, k.Status.Phase, "the failure stays reported once the pod is gone")
	assert.Equal(t, "StartDeadlineExceeded", k.Status.Reason)
	assertEvent(t, k, "Failed")
}
