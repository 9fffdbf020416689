package webhook_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// readyGPUNode registers a node with one GPU, the GPU taint and team-sched's taint and label,
// ready for pods. Only team-sched's GPU kernels (given the team's toleration and node selector
// by the webhook) fit there.
func readyGPUNode(t *testing.T, name string) {
	t.Helper()
	testenv.ReadyNode(t, env.Client, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"elastic-jupyter.test/pool": "sched"}},
		Spec: corev1.NodeSpec{Taints: []corev1.Taint{
			{Key: "nvidia.com/gpu", Value: "present", Effect: corev1.TaintEffectNoSchedule},
			{Key: "dedicated", Value: "team-sched", Effect: corev1.TaintEffectNoSchedule},
		}},
	}, corev1.ResourceList{
		corev1.ResourceCPU: resource.MustParse("8"), corev1.ResourceMemory: resource.MustParse("32Gi"),
		corev1.ResourcePods: resource.MustParse("110"), "nvidia.com/gpu": resource.MustParse("1"),
	})
}

// ungate removes the GPU queue's scheduling gate, as the controller's queue does when the pod's
// turn comes.
func ungate(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p := &corev1.Pod{}
		if err := env.Client.Get(ctx(t), client.ObjectKeyFromObject(pod), p); err != nil {
			return err
		}
		p.Spec.SchedulingGates = nil
		return env.Client.Update(ctx(t), p)
	}))
}

// With the real kube-scheduler: a GPU kernel waits behind the GPU queue's scheduling gate
// until released; released, the first lands on the tainted GPU node thanks to the tolerations
// and node selector the webhook gave it; the second waits for the GPU.
func TestGPUKernelPodsAreScheduledOntoTheGPUNodeOneAtATime(t *testing.T) {
	readyGPUNode(t, "gpu-node")
	createKernelSpec(t, "team-sched", "gpu-sched", ptr.To[int32](1), "")
	first := kernelPodFor("team-sched", "k-first", "gpu-sched")
	require.NoError(t, createPod(t, env.Client, first))
	gated := stored(t, first)
	require.Len(t, gated.Spec.SchedulingGates, 1, "a GPU kernel pod waits in the GPU queue")
	assert.Equal(t, ejv1.GPUQueueGate, gated.Spec.SchedulingGates[0].Name)
	require.Eventually(t, func() bool {
		p := stored(t, first)
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Reason == corev1.PodReasonSchedulingGated {
				return true
			}
		}
		return false
	}, time.Minute, 200*time.Millisecond, "the scheduler leaves a gated pod alone")
	ungate(t, first)
	require.Eventually(t, func() bool {
		p := &corev1.Pod{}
		return env.Client.Get(ctx(t), client.ObjectKeyFromObject(first), p) == nil && p.Spec.NodeName == "gpu-node"
	}, time.Minute, 200*time.Millisecond, "the GPU kernel tolerates the node's taints and lands on the GPU node")
	p := stored(t, first)
	assert.Equal(t, "sched", p.Spec.NodeSelector["elastic-jupyter.test/pool"])

	second := kernelPodFor("team-sched", "k-second", "gpu-sched")
	require.NoError(t, createPod(t, env.Client, second))
	ungate(t, second)
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
