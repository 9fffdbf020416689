package devnode

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
