package devnode

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestPhase(t *testing.T) {
	running := func() *container { return &container{spec: &corev1.Container{Name: "r"}, hasRun: true, proc: &proc{}} }
	exited := func(code int32) *container {
		return &container{spec: &corev1.Container{Name: "e"}, hasRun: true, exit: &corev1.ContainerStateTerminated{ExitCode: code}}
	}
	startFailed := func() *container {
		return &container{spec: &corev1.Container{Name: "s"}, startFailed: true, waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerError"}}
	}
	fresh := func() *container { return &container{spec: &corev1.Container{Name: "f"}} }
	for _, tc := range []struct {
		name   string
		policy corev1.RestartPolicy
		inits  []*container
		ctrs   []*container
		want   corev1.PodPhase
	}{
		{"nothing started", corev1.RestartPolicyAlways, nil, []*container{fresh()}, corev1.PodPending},
		{"init running", corev1.RestartPolicyAlways, []*container{running()}, []*container{fresh()}, corev1.PodPending},
		{"init failed, Never", corev1.RestartPolicyNever, []*container{exited(1)}, []*container{fresh()}, corev1.PodFailed},
		{"init failed, OnFailure", corev1.RestartPolicyOnFailure, []*container{exited(1)}, []*container{fresh()}, corev1.PodPending},
		{"running", corev1.RestartPolicyNever, []*container{exited(0)}, []*container{running(), exited(0)}, corev1.PodRunning},
		{"all succeeded, Never", corev1.RestartPolicyNever, nil, []*container{exited(0), exited(0)}, corev1.PodSucceeded},
		{"one failed, Never", corev1.RestartPolicyNever, nil, []*container{exited(0), exited(2)}, corev1.PodFailed},
		{"failed, OnFailure restarts", corev1.RestartPolicyOnFailure, nil, []*container{exited(2)}, corev1.PodRunning},
		{"succeeded, OnFailure", corev1.RestartPolicyOnFailure, nil, []*container{exited(0)}, corev1.PodSucceeded},
		{"exited 0, Always restarts", corev1.RestartPolicyAlways, nil, []*container{exited(0)}, corev1.PodRunning},
		{"start failed, Never", corev1.RestartPolicyNever, nil, []*container{startFailed()}, corev1.PodFailed},
		{"start failed, Always retries", corev1.RestartPolicyAlways, nil, []*container{startFailed()}, corev1.PodPending},
	} {
		w := &podWorker{inits: tc.inits, ctrs: tc.ctrs}
		pod := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: tc.policy}}
		assert.Equal(t, tc.want, w.phase(pod), tc.name)
	}
}

func TestMergeConditions(t *testing.T) {
	old := metav1.NewTime(time.Now().Add(-time.Hour).Truncate(time.Second))
	existing := []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: old},
		{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: old},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: old},
	}
	got := mergeConditions(existing, []corev1.PodCondition{
		condition(corev1.PodInitialized, true, "", ""),
		condition(corev1.PodReady, true, "", ""),
	})
	assert.Len(t, got, 3)
	byType := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range got {
		byType[c.Type] = c
	}
	assert.Equal(t, old, byType[corev1.PodScheduled].LastTransitionTime, "the scheduler's condition is kept")
	assert.Equal(t, old, byType[corev1.PodInitialized].LastTransitionTime, "an unchanged condition keeps its transition time")
	assert.True(t, byType[corev1.PodReady].LastTransitionTime.After(old.Time), "a changed condition gets a new transition time")
	assert.Equal(t, corev1.ConditionTrue, byType[corev1.PodReady].Status)
}

// A sync of a copy older than the API's, whose status the API has already (devnode's own
// earlier write, the watch not caught up), writes nothing after the conflict: a write of the
// same status would only make a new version, whose event makes the next stale sync conflict
// again (with 200 pods starting at once that loop was ten thousand requests).
func TestStaleCopyWritesNoStatusTwice(t *testing.T) {
	ctx := context.Background()
	opts, err := Options{NodeName: "n1", Root: t.TempDir()}.withDefaults()
	require.NoError(t, err)
	stale := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: "u1", ResourceVersion: "1"},
		Spec:       corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "c", Image: "i"}}},
	}
	client := fake.NewClientset()
	a := &Agent{opts: opts, log: slog.New(slog.DiscardHandler), client: client}
	w := newPodWorker(ctx, a, stale)
	current := stale.DeepCopy()
	current.ResourceVersion = "2"
	current.Status = w.computeStatus(stale)
	var puts int
	client.PrependReactor("get", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, current.DeepCopy(), nil
	})
	client.PrependReactor("update", "pods", func(action k8stesting.Action) (bool, runtime.Object, error) {
		puts++
		p := action.(k8stesting.UpdateAction).GetObject().(*corev1.Pod)
		if p.ResourceVersion != current.ResourceVersion {
			return true, nil, apierrors.NewConflict(corev1.Resource("pods"), p.Name, errors.New("the object has been modified"))
		}
		return true, p, nil
	})
	assert.True(t, w.writeStatus(ctx, stale))
	assert.Equal(t, 1, puts, "one conflicting write, then nothing: the API has the status")
	assert.Equal(t, "2", w.writtenFrom)
}
