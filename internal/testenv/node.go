package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ReadyNode registers node (its labels and taints as given) with capacity, reports it Ready
// with a fresh Lease, and waits until the node lifecycle controller (kube-controller-manager,
// Options.ControllerManager) lifts its not-ready taint, as a kubelet's node would be. The node
// and its Lease are deleted when the test ends.
func ReadyNode(t *testing.T, c client.Client, node *corev1.Node, capacity corev1.ResourceList) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	require.NoError(t, c.Create(ctx, node))
	t.Cleanup(func() { _ = c.Delete(context.Background(), node) })
	// The node lifecycle controller taints a new node at once: retry on its writes.
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(node), node); err != nil {
			return err
		}
		node.Status = corev1.NodeStatus{
			Capacity: capacity, Allocatable: capacity,
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
				LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}},
		}
		return c.Status().Update(ctx, node)
	}))
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: node.Name, Namespace: "kube-node-lease"},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(node.Name), LeaseDurationSeconds: ptr.To[int32](3600),
			RenewTime: &metav1.MicroTime{Time: time.Now()}},
	}
	require.NoError(t, c.Create(ctx, lease))
	t.Cleanup(func() { _ = c.Delete(context.Background(), lease) })
	require.Eventually(t, func() bool {
		n := &corev1.Node{}
		if c.Get(ctx, client.ObjectKey{Name: node.Name}, n) != nil {
			return false
		}
		for _, taint := range n.Spec.Taints {
			if taint.Key == corev1.TaintNodeNotReady {
				return false
			}
		}
		return true
	}, time.Minute, 100*time.Millisecond, "the node lifecycle controller lifts the not-ready taint of node %s", node.Name)
}
