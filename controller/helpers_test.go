package controller_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// wait is how long a test waits for the controller; generous, for a busy shared machine.
const wait = 60 * time.Second

// poll is how often a test looks.
const poll = 50 * time.Millisecond

func newNamespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "ctrl-test-"}}
	require.NoError(t, k8s.Create(context.Background(), ns))
	return ns.Name
}

// eventually waits until get(obj) succeeds and cond(obj) holds, and returns obj.
func eventually[T client.Object](t *testing.T, key types.NamespacedName, obj T, cond func(T) bool, msg string, args ...any) T {
	t.Helper()
	var last error
	require.Eventually(t, func() bool {
		if last = k8s.Get(context.Background(), key, obj); last != nil {
			return false
		}
		return cond(obj)
	}, wait, poll, append([]any{msg + " (last error: %v)"}, append(args, last)...)...)
	return obj
}

// exists waits for an object to exist.
func exists[T client.Object](t *testing.T, ns, name string, obj T) T {
	t.Helper()
	return eventually(t, types.NamespacedName{Namespace: ns, Name: name}, obj, func(T) bool { return true }, "%T %s/%s exists", obj, ns, name)
}

// gone waits for an object to be deleted.
func gone(t *testing.T, ns, name string, obj client.Object) {
	t.Helper()
	require.Eventually(t, func() bool {
		err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, obj)
		return err != nil && client.IgnoreNotFound(err) == nil
	}, wait, poll, "%T %s/%s is deleted", obj, ns, name)
}

// kernelIn waits for a kernel to satisfy cond.
func kernelIn(t *testing.T, k *ejv1.JupyterKernel, cond func(*ejv1.JupyterKernel) bool, msg string) *ejv1.JupyterKernel {
	t.Helper()
	return eventually(t, client.ObjectKeyFromObject(k), &ejv1.JupyterKernel{}, cond, msg)
}

func phaseIs(p ejv1.KernelPhase) func(*ejv1.JupyterKernel) bool {
	return func(k *ejv1.JupyterKernel) bool {
		return k.Status.Phase == p && k.Status.ObservedGeneration == k.Generation
	}
}

// update re-reads obj, applies change and writes it, retrying on conflicts.
func update[T client.Object](t *testing.T, obj T, change func(T)) {
	t.Helper()
	require.Eventually(t, func() bool {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
			return false
		}
		change(obj)
		return k8s.Update(context.Background(), obj) == nil
	}, wait, poll, "updating %T %s", obj, client.ObjectKeyFromObject(obj))
}

// The tests play the kubelet: no node runs pods here, so they write the pod status a kubelet
// would.

// kubeletRun marks a pod running and Ready at ip.
func kubeletRun(t *testing.T, pod *corev1.Pod, ip string) {
	t.Helper()
	now := metav1.Now()
	kubeletStatus(t, pod, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		s.PodIP = ip
		s.PodIPs = []corev1.PodIP{{IP: ip}}
		s.StartTime = &now
		s.Conditions = []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		}
		s.ContainerStatuses = []corev1.ContainerStatus{{
			Name: ejv1.KernelContainerName, Ready: true, Image: pod.Spec.Containers[0].Image,
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		}}
	})
}

// kubeletStatus writes a pod's status as change makes it.
func kubeletStatus(t *testing.T, pod *corev1.Pod, change func(*corev1.PodStatus)) {
	t.Helper()
	require.Eventually(t, func() bool {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(pod), pod); err != nil {
			return false
		}
		change(&pod.Status)
		err := k8s.Status().Update(context.Background(), pod)
		if err != nil {
			t.Logf("writing the status of pod %s: %v", pod.Name, err)
		}
		return err == nil
	}, wait, poll, "writing the status of pod %s", pod.Name)
}

// assertEvent waits for an event with reason about obj.
func assertEvent(t *testing.T, obj client.Object, reason string) {
	t.Helper()
	require.Eventually(t, func() bool {
		list := &eventsv1.EventList{}
		if err := k8s.List(context.Background(), list, client.InNamespace(obj.GetNamespace())); err != nil {
			return false
		}
		for _, e := range list.Items {
			if e.Regarding.UID == obj.GetUID() && e.Reason == reason {
				return true
			}
		}
		return false
	}, wait, poll, "an event %s about %s", reason, obj.GetName())
}

// assertNotIn checks that none of secrets appears anywhere in obj.
func assertNotIn(t *testing.T, obj any, secrets ...string) {
	t.Helper()
	data, err := json.Marshal(obj)
	require.NoError(t, err)
	for _, s := range secrets {
		require.NotEmpty(t, s)
		assert.NotContains(t, string(data), s, "a secret value appears in %T", obj)
	}
}
