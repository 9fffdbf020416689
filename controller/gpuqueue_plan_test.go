package controller

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

func TestPlanQueue(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	gpuNodes := []queueNode{{name: "gpu-a", allocatable: 2}, {name: "gpu-b", allocatable: 1}}
	both := []string{"gpu-a", "gpu-b"}
	cases := []struct {
		name    string
		nodes   []queueNode
		pods    []queuePod
		release []string
		waiting map[string]queueSlot
	}{
		{
			name:    "first come, first served: as many as fit, in arrival order",
			nodes:   gpuNodes,
			pods:    []queuePod{{key: "ns/c", created: at(3), gpus: 1, eligible: both, gated: true}, {key: "ns/a", created: at(1), gpus: 1, eligible: both, gated: true}, {key: "ns/b", created: at(2), gpus: 1, eligible: both, gated: true}, {key: "ns/d", created: at(4), gpus: 1, eligible: both, gated: true}},
			release: []string{"ns/a", "ns/b", "ns/c"},
			waiting: map[string]queueSlot{"ns/d": {ahead: 0, free: 0, total: 3}},
		},
		{
			name:    "GPUs in use and pods in flight hold their units; later ones count the kernels ahead",
			nodes:   []queueNode{{name: "gpu-a", allocatable: 2, used: 1}, {name: "gpu-b", allocatable: 1}},
			pods:    []queuePod{{key: "ns/flying", created: at(0), gpus: 1, eligible: both}, {key: "ns/a", created: at(1), gpus: 1, eligible: both, gated: true}, {key: "ns/b", created: at(2), gpus: 1, eligible: both, gated: true}, {key: "ns/c", created: at(3), gpus: 1, eligible: both, gated: true}},
			release: []string{"ns/a"},
			waiting: map[string]queueSlot{"ns/b": {ahead: 0, free: 0, total: 3}, "ns/c": {ahead: 1, free: 0, total: 3}},
		},
		{
			name:    "a big kernel that does not fit keeps later small ones from overtaking it on its nodes",
			nodes:   []queueNode{{name: "gpu-a", allocatable: 2, used: 1}},
			pods:    []queuePod{{key: "ns/big", created: at(1), gpus: 2, eligible: []string{"gpu-a"}, gated: true}, {key: "ns/small", created: at(2), gpus: 1, eligible: []string{"gpu-a"}, gated: true}},
			release: nil,
			waiting: map[string]queueSlot{"ns/big": {ahead: 0, free: 1, total: 2}, "ns/small": {ahead: 1, free: 1, total: 2}},
		},
		{
			name:    "kernels that need other nodes are not held behind it",
			nodes:   []queueNode{{name: "gpu-a", allocatable: 1, used: 1}, {name: "gpu-b", allocatable: 1}},
			pods:    []queuePod{{key: "ns/team-a", created: at(1), gpus: 1, eligible: []string{"gpu-a"}, gated: true}, {key: "ns/team-b", created: at(2), gpus: 1, eligible: []string{"gpu-b"}, gated: true}},
			release: []string{"ns/team-b"},
			waiting: map[string]queueSlot{"ns/team-a": {ahead: 0, free: 0, total: 1}},
		},
		{
			name:    "no node offers the GPU at all: the scheduler (and an autoscaler) gets the pod",
			nodes:   gpuNodes,
			pods:    []queuePod{{key: "ns/mig", created: at(1), gpus: 1, eligible: nil, gated: true}},
			release: []string{"ns/mig"},
			waiting: map[string]queueSlot{},
		},
		{
			name:    "the same arrival time is ordered by name, so every pass agrees",
			nodes:   []queueNode{{name: "gpu-a", allocatable: 1}},
			pods:    []queuePod{{key: "ns/y", created: at(1), gpus: 1, eligible: []string{"gpu-a"}, gated: true}, {key: "ns/x", created: at(1), gpus: 1, eligible: []string{"gpu-a"}, gated: true}},
			release: []string{"ns/x"},
			waiting: map[string]queueSlot{"ns/y": {ahead: 0, free: 0, total: 1}},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			release, waiting := planQueue(tc.nodes, tc.pods)
			assert.Equal(t, tc.release, release)
			assert.Equal(t, tc.waiting, waiting)
		})
	}
}

func TestQueueMessage(t *testing.T) {
	assert.Equal(t, "waiting for a GPU: 0 of 2 nvidia.com/gpu free (2 kernels ahead of you)", queueMessage("nvidia.com/gpu", queueSlot{ahead: 2, total: 2}))
	assert.Equal(t, "waiting for a GPU: 0 of 1 nvidia.com/mig-1g.10gb free (1 kernel ahead of you)", queueMessage("nvidia.com/mig-1g.10gb", queueSlot{ahead: 1, total: 1}))
	assert.Equal(t, "waiting for a GPU: 1 of 2 nvidia.com/gpu free (no kernel ahead of you)", queueMessage("nvidia.com/gpu", queueSlot{free: 1, total: 2}))
}

func TestKernelGPUTime(t *testing.T) {
	k := func(phase ejv1.KernelPhase, gpus, suspended int32, state string) *ejv1.JupyterKernel {
		k := &ejv1.JupyterKernel{}
		k.Status.Phase, k.Status.GPUs, k.Status.SuspendedGPUs, k.Status.ExecutionState, k.Status.GPUResource = phase, gpus, suspended, state, "nvidia.com/gpu"
		return k
	}
	assert.Equal(t, []gpuTime{{resource: "nvidia.com/gpu", state: "busy", seconds: 4}}, kernelGPUTime(k(ejv1.KernelRunning, 2, 0, "busy"), 2*time.Second))
	assert.Equal(t, []gpuTime{{resource: "nvidia.com/gpu", state: "idle", seconds: 2}}, kernelGPUTime(k(ejv1.KernelStarting, 1, 0, ""), 2*time.Second), "a pod that starts holds its GPU idle")
	assert.Equal(t, []gpuTime{{resource: "nvidia.com/gpu", givenBack: true, seconds: 6}}, kernelGPUTime(k(ejv1.KernelSuspended, 0, 3, "idle"), 2*time.Second))
	assert.Empty(t, kernelGPUTime(k(ejv1.KernelRunning, 0, 0, "busy"), 2*time.Second), "a CPU kernel")
	assert.Empty(t, kernelGPUTime(k(ejv1.KernelPending, 0, 0, ""), 2*time.Second), "waiting for a GPU holds none")
}
