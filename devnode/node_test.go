package devnode

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The node registers with capacity, labels and taints from the options, turns Ready (so the
// control plane lifts its not-ready taint), renews its Lease, and reports NotReady when
// devnode stops.
func TestNodeRegistration(t *testing.T) {
	taint := corev1.Taint{Key: "dedicated", Value: "vision", Effect: corev1.TaintEffectNoSchedule}
	n := startNode(t, Options{
		GPUs:         2,
		GPUResources: []corev1.ResourceName{"nvidia.com/gpu", "nvidia.com/mig-1g.10gb"},
		CPU:          resource.MustParse("6"),
		Memory:       resource.MustParse("12Gi"),
		Pods:         20,
		Resources:    corev1.ResourceList{"example.com/fpga": resource.MustParse("1")},
		Labels:       map[string]string{"nvidia.com/gpu.product": "FAKE-A100"},
		Taints:       []corev1.Taint{taint},
	})
	cs := n.cs
	node, err := cs.CoreV1().Nodes().Get(context.Background(), n.name, metav1.GetOptions{})
	require.NoError(t, err)
	for res, want := range map[corev1.ResourceName]string{
		"nvidia.com/gpu": "2", "nvidia.com/mig-1g.10gb": "2", "example.com/fpga": "1",
		corev1.ResourceCPU: "6", corev1.ResourceMemory: "12Gi", corev1.ResourcePods: "20",
	} {
		for what, list := range map[string]corev1.ResourceList{"capacity": node.Status.Capacity, "allocatable": node.Status.Allocatable} {
			q, ok := list[res]
			if assert.True(t, ok, "%s has no %s", what, res) {
				assert.Zero(t, q.Cmp(resource.MustParse(want)), "%s %s = %s, want %s", what, res, q.String(), want)
			}
		}
	}
	assert.Equal(t, "FAKE-A100", node.Labels["nvidia.com/gpu.product"])
	assert.Equal(t, n.name, node.Labels[corev1.LabelHostname])
	assert.Equal(t, "true", node.Labels[LabelDevnode])
	assert.Contains(t, node.Spec.Taints, taint)
	assert.NotContains(t, node.Spec.Taints, DefaultGPUTaint, "explicit taints replace the default GPU taint")
	assert.True(t, nodeReady(node))
	assert.Contains(t, node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: "127.0.0.1"})

	lease, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), n.name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, n.name, *lease.Spec.HolderIdentity)
	first := lease.Spec.RenewTime.Time
	require.True(t, assertEventually(30*time.Second, func() bool {
		l, err := cs.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), n.name, metav1.GetOptions{})
		return err == nil && l.Spec.RenewTime.After(first)
	}), "the lease was never renewed")

	n.stop()
	node, err = cs.CoreV1().Nodes().Get(context.Background(), n.name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.False(t, nodeReady(node), "the node still reports Ready after devnode stopped")
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			assert.Equal(t, "KubeletNotReady", c.Reason)
			assert.Equal(t, "devnode stopped", c.Message)
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// An existing Node (a devnode restarted under the same name) keeps the taints others put on
// it and gets its labels back.
func TestNodeReRegistrationKeepsOtherTaints(t *testing.T) {
	cs := clientset(t)
	name := "devnode-reregister"
	other := corev1.Taint{Key: "example.com/maintenance", Effect: corev1.TaintEffectPreferNoSchedule}
	_, err := cs.CoreV1().Nodes().Create(context.Background(), &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"keep": "me"}},
		Spec:       corev1.NodeSpec{Taints: []corev1.Taint{other}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	n := startNode(t, Options{NodeName: name, GPUs: 1})
	node, err := cs.CoreV1().Nodes().Get(context.Background(), n.name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, node.Spec.Taints, other)
	assert.Contains(t, node.Spec.Taints, DefaultGPUTaint)
	assert.Equal(t, "me", node.Labels["keep"])
	assert.Equal(t, "true", node.Labels[LabelDevnode])
}
