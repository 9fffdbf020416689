package devnode

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDeviceID(t *testing.T) {
	for _, tc := range []struct {
		res  corev1.ResourceName
		i    int
		want string
	}{
		{"nvidia.com/gpu", 0, "GPU-n1-0"},
		{"nvidia.com/gpu", 3, "GPU-n1-3"},
		{"nvidia.com/mig-1g.10gb", 1, "MIG-1G.10GB-n1-1"},
		{"example.com/fpga", 0, "FPGA-n1-0"},
	} {
		assert.Equal(t, tc.want, DeviceID("n1", tc.res, tc.i))
	}
}

func gpuContainer(res corev1.ResourceName, n int64) *corev1.Container {
	return &corev1.Container{Name: "c", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{res: *resource.NewQuantity(n, resource.DecimalSI)}}}
}

func TestGPUPoolNeverSharesADevice(t *testing.T) {
	p := newGPUPool("n", []corev1.ResourceName{"nvidia.com/gpu", "nvidia.com/mig-1g.10gb"}, 2)
	gpus, migs := p.capacity()["nvidia.com/gpu"], p.capacity()["nvidia.com/mig-1g.10gb"]
	assert.Equal(t, int64(2), gpus.Value())
	assert.Equal(t, int64(2), migs.Value())

	a, err := p.allocate("pod-a/c", gpuContainer("nvidia.com/gpu", 1), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"GPU-n-0"}, a)
	b, err := p.allocate("pod-b/c", gpuContainer("nvidia.com/gpu", 1), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"GPU-n-1"}, b)
	_, err = p.allocate("pod-c/c", gpuContainer("nvidia.com/gpu", 1), nil)
	require.Error(t, err, "a third device was handed out of two")
	assert.Contains(t, err.Error(), "1 nvidia.com/gpu requested but only 0 of 2 free")

	again, err := p.allocate("pod-a/c", gpuContainer("nvidia.com/gpu", 1), nil)
	require.NoError(t, err)
	assert.Equal(t, a, again, "an owner asking again keeps its device")

	p.release("pod-a/c")
	c, err := p.allocate("pod-c/c", gpuContainer("nvidia.com/gpu", 1), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"GPU-n-0"}, c, "the released device is reused")

	mig, err := p.allocate("pod-d/c", gpuContainer("nvidia.com/mig-1g.10gb", 2), []string{"MIG-1G.10GB-n-1"})
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"MIG-1G.10GB-n-0", "MIG-1G.10GB-n-1"}, mig)
	p.releasePrefix("pod-d/")
	assert.Empty(t, p.held("pod-d/c"))

	none, err := p.allocate("pod-e/c", &corev1.Container{Name: "c"}, nil)
	require.NoError(t, err)
	assert.Empty(t, none, "a container without a GPU limit gets no device")

	pref, err := p.allocate("pod-f/c", gpuContainer("nvidia.com/mig-1g.10gb", 1), []string{"MIG-1G.10GB-n-1"})
	require.NoError(t, err)
	assert.Equal(t, []string{"MIG-1G.10GB-n-1"}, pref, "a preferred free device is chosen")
}

// With --gpus 1 and the GPU taint: a pod that tolerates the taint and limits nvidia.com/gpu
// to 1 runs with NVIDIA_VISIBLE_DEVICES; a second one stays Pending; deleting the first lets
// the second run on the same device. A pod without the toleration never lands on the node.
func TestGPUExclusivity(t *testing.T) {
	n := startNode(t, Options{GPUs: 1})
	ns := newNamespace(t, n.cs)
	node, err := n.cs.CoreV1().Nodes().Get(context.Background(), n.name, metav1.GetOptions{})
	require.NoError(t, err)
	allocatable := node.Status.Allocatable["nvidia.com/gpu"]
	assert.Equal(t, int64(1), allocatable.Value())
	assert.Contains(t, node.Spec.Taints, DefaultGPUTaint)

	gpuPod := func(name string) *corev1.Pod {
		p := shellPod(name, corev1.RestartPolicyAlways, `echo "devices=$NVIDIA_VISIBLE_DEVICES"; exec sleep 1000`)
		p.Spec.Tolerations = []corev1.Toleration{{Key: "nvidia.com/gpu", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
		return p
	}
	first := createPod(t, n.cs, ns, gpuPod("first"))
	waitPod(t, n.cs, ns, "first", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	device := "GPU-" + n.name + "-0"
	n.waitLog(t, first, "main", 0, "devices="+device+"\n")

	second := createPod(t, n.cs, ns, gpuPod("second"))
	unschedulable := func(msg string) func(*corev1.Pod) bool {
		return func(p *corev1.Pod) bool {
			for _, c := range p.Status.Conditions {
				if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && strings.Contains(c.Message, msg) {
					return true
				}
			}
			return false
		}
	}
	waitPod(t, n.cs, ns, "second", 60*time.Second, "unschedulable for lack of GPUs", unschedulable("Insufficient nvidia.com/gpu"))

	plain := shellPod("untolerating", corev1.RestartPolicyAlways, "exec sleep 1000")
	createPod(t, n.cs, ns, plain)
	waitPod(t, n.cs, ns, "untolerating", 60*time.Second, "unschedulable for the taint", unschedulable("untolerated taint"))

	require.NoError(t, n.cs.CoreV1().Pods(ns).Delete(context.Background(), "first", metav1.DeleteOptions{}))
	waitPodGone(t, n.cs, ns, "first", 60*time.Second)
	got := waitPod(t, n.cs, ns, "second", 90*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	assert.Equal(t, n.name, got.Spec.NodeName)
	n.waitLog(t, second, "main", 0, "devices="+device+"\n")

	never, err := n.cs.CoreV1().Pods(ns).Get(context.Background(), "untolerating", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Empty(t, never.Spec.NodeName, "a pod without the GPU toleration landed on the GPU node")
	assert.True(t, unschedulable("untolerated taint")(never))
}
