package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// readyGPUNode registers a node with one GPU, the GPU taint and team-sched's taint and label,
// reports it Ready with a fresh Lease, and waits until the node lifecycle controller lifts its
// not-ready taint. Only team-sched's GPU kernels (given the team's toleration and node selector
// by the webhook) fit there.
func readyGPUNode(t *testing.T, name string) {
	t.Helper()
	c := env.Client
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"elastic-jupyter.test/pool": "sched"}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{
			{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule},
			{Key: "dedicated", Value: "team-sched", Effect: corev1.TaintEffectNoSchedule},
		}},
	}
	require.NoError(t, c.Create(ctx(t), node))
	t.Cleanup(func() { _ = c.Delete(context.Background(), node) })
	capacity := corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods: resource.MustParse("110"), "nvidia.com/gpu": resource.MustParse("1"),
	}
	// The node lifecycle controller taints a new node at once: retry on its writes.
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx(t), client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		node.Status = corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		}
		return c.Status().Update(ctx(t), node)
	}))
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "kube-node-lease"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), LeaseDurationSeconds: ptr.To[int32](40),
			RenewTime: &metav1.MicroTime{Time: time.Now()}},
	}
	require.NoError(t, c.Create(ctx(t), lease))
	t.Cleanup(func() { _ = c.Delete(context.Background(), lease) })
	require.Eventually(t, func() bool {
		n := &corev1.Node{}
		if c.Get(ctx(t), client.ObjectKey{Name: name}, n) != nil {
			return false
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == corev1.TaintNodeNotReady {
				return false
			}
		}
		return true
	}, time.Minute, 200*time.Millisecond, "the node lifecycle controller lifts the not-ready taint")
}

// With the real kube-scheduler: the first GPU kernel lands on the tainted GPU node thanks to
// the tolerations and node selector the webhook gave it; the second waits for the GPU.
func TestGPUKernelPodsAreScheduledOntoTheGPUNodeOneAtATime(t *testing.T) {
	readyGPUNode(t, "gpu-node")
	createKernelSpec(t, "team-sched", "gpu-sched", ptr.To[int32](1), "")
	first := kernelPodFor("team-sched", "k-first", "gpu-sched")
	require.NoError(t, createPod(t, env.Client, first))
	require.Eventually(t, func() bool {
		p := &corev1.Pod{}
		return env.Client.Get(ctx(t), client.ObjectKeyFromObject(first), p) == nil && p.Spec.NodeName == "gpu-node"
	}, time.Minute, 200*time.Millisecond, "the GPU kernel tolerates the node's taints and lands on the GPU node")
	p := stored(t, first)
	assert.Equal(t, "sched", p.Spec.NodeSelector["elastic-jupyter.test/pool"])

	second := kernelPodFor("team-sched", "k-second", "gpu-sched")
	require.NoError(t, createPod(t, env.Client, second))
	var msg string
	require.Eventually(t, func() bool {
		p := &corev1.Pod{}
		if env.Client.Get(ctx(t), client.ObjectKeyFromObject(second), p) != nil {
			return false
		}
		for _, cond := range p.Status.Conditions {
			if cond.Type == corev1.PodScheduled && cond.Status == corev1.ConditionFalse {
				msg = cond.Message
				return strings.Contains(cond.Message, "Insufficient nvidia.com/gpu")
			}
		}
		return false
	}, time.Minute, 200*time.Millisecond, "the second GPU kernel waits for the GPU")
	assert.Empty(t, stored(t, second).Spec.NodeName)
	t.Logf("second kernel pod: %s", msg)
}
