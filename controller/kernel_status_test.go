package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

func TestReportPod(t *testing.T) {
	start := metav1.Unix(1000, 0)
	end := metav1.Unix(2000, 0)
	gpuPod := func(mod func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "kernel", Image: "img",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
				"nvidia.com/gpu": resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi"),
			}},
		}}}}
		mod(p)
		return p
	}
	cases := []struct {
		name          string
		pod           *corev1.Pod
		phase         ejv1.KernelPhase
		reason        string
		message       string
		gpus          int32
		ip            string
		completedTime bool
	}{
		{
			name: "just created", pod: gpuPod(func(p *corev1.Pod) {}),
			phase: ejv1.KernelPending, reason: "Scheduling", gpus: 2,
		},
		{
			name: "unschedulable",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/2 nodes are available: 2 Insufficient nvidia.com/gpu."}}
			}),
			phase: ejv1.KernelPending, reason: "Unschedulable", message: "Insufficient nvidia.com/gpu", gpus: 2,
		},
		{
			name: "scheduled, pulling the image (no image id yet)",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				p.Status.Phase = corev1.PodPending
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "kernel", Image: "quay.io/jupyter/pytorch-notebook", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
			}),
			phase: ejv1.KernelStarting, reason: "Starting", message: "pulling image quay.io/jupyter/pytorch-notebook on node n1", gpus: 2,
		},
		{
			name: "scheduled, init container running",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				p.Status.Phase = corev1.PodPending
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "kernel-launcher-install", Image: "x", ImageID: "x@sha256:1", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}}
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "kernel", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}}}
			}),
			phase: ejv1.KernelStarting, reason: "Starting", message: "preparing the kernel's pod on node n1", gpus: 2,
		},
		{
			name: "scheduled, creating the container from a present image",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				p.Status.Phase = corev1.PodPending
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "kernel", Image: "x", ImageID: "x@sha256:1", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
			}),
			phase: ejv1.KernelStarting, reason: "Starting", message: "starting the kernel's container on node n1 (ContainerCreating)", gpus: 2,
		},
		{
			name: "the image has no such command",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				p.Status.Phase = corev1.PodPending
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "kernel", Image: "busybox", ImageID: "busybox@sha256:1", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
					Reason: "CreateContainerError", Message: `exec: "python3": executable file not found in $PATH`}}}}
			}),
			phase: ejv1.KernelFailed, reason: "ContainerCannotRun", message: `cannot start in image "busybox" (CreateContainerError): exec: "python3": executable file not found in $PATH; fix the kernelspec's command or image`, gpus: 2,
		},
		{
			name: "running, not yet ready",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				p.Status.Phase, p.Status.PodIP, p.Status.StartTime = corev1.PodRunning, "10.0.0.9", &start
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
			}),
			phase: ejv1.KernelStarting, reason: "Starting", gpus: 2, ip: "10.0.0.9",
		},
		{
			name: "ready",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				p.Status.Phase, p.Status.PodIP, p.Status.StartTime = corev1.PodRunning, "10.0.0.9", &start
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
			}),
			phase: ejv1.KernelRunning, reason: "PodReady", message: "10.0.0.9", gpus: 2, ip: "10.0.0.9",
		},
		{
			name: "image pull back-off",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				p.Status.Phase = corev1.PodPending
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "kernel", Image: "img", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "not found"}}}}
			}),
			phase: ejv1.KernelFailed, reason: "ImagePullFailed", message: `cannot pull image "img" (ImagePullBackOff): not found`, gpus: 2,
		},
		{
			name: "launcher init image missing",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Spec.NodeName = "n1"
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "kernel-launcher-install", Image: "launcher", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}}
			}),
			phase: ejv1.KernelFailed, reason: "ImagePullFailed", message: "kernel-launcher-install", gpus: 2,
		},
		{
			name: "OOM killed",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "kernel", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, Reason: "OOMKilled", FinishedAt: end}}}}
			}),
			phase: ejv1.KernelFailed, reason: "OOMKilled", message: "more memory than its limit of 1Gi", completedTime: true,
		},
		{
			name: "exit code",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "kernel", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error", Message: "boom", FinishedAt: end}}}}
			}),
			phase: ejv1.KernelFailed, reason: "KernelExited", message: "exited with code 3: boom", completedTime: true,
		},
		{
			name: "init container failed",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodFailed
				p.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: "kernel-launcher-install", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}}
			}),
			phase: ejv1.KernelFailed, reason: "InitFailed", message: "kernel-launcher-install exited with code 1",
		},
		{
			name: "evicted",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Status.Phase, p.Status.Reason, p.Status.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
			}),
			phase: ejv1.KernelFailed, reason: "Evicted", message: "low on resource",
		},
		{
			name: "exited cleanly",
			pod: gpuPod(func(p *corev1.Pod) {
				p.Status.Phase = corev1.PodSucceeded
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "kernel", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: end}}}}
			}),
			phase: ejv1.KernelSucceeded, reason: "Completed", completedTime: true,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := reportPod(tc.pod, gpuMatcher())
			assert.Equal(t, tc.phase, r.Phase)
			assert.Equal(t, tc.reason, r.Reason)
			assert.Contains(t, r.Message, tc.message)
			assert.Equal(t, tc.gpus, r.GPUs)
			assert.Equal(t, tc.ip, r.PodIP)
			assert.Equal(t, tc.completedTime, r.CompletionTime != nil)
		})
	}
}

func TestPodGPUs(t *testing.T) {
	limits := func(kv ...string) corev1.ResourceRequirements {
		l := corev1.ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return corev1.ResourceRequirements{Limits: l}
	}
	cases := []struct {
		name  string
		spec  corev1.PodSpec
		extra []corev1.ResourceName
		want  int32
	}{
		{"none", corev1.PodSpec{Containers: []corev1.Container{{Resources: limits("cpu", "2", "memory", "1Gi")}}}, nil, 0},
		{"nvidia", corev1.PodSpec{Containers: []corev1.Container{{Resources: limits("nvidia.com/gpu", "2")}}}, nil, 2},
		{"amd and nvidia in two containers", corev1.PodSpec{Containers: []corev1.Container{
			{Resources: limits("amd.com/gpu", "1")}, {Resources: limits("nvidia.com/gpu", "1")},
		}}, nil, 2},
		{"MIG profile not named gpu is not counted by default", corev1.PodSpec{Containers: []corev1.Container{{Resources: limits("nvidia.com/mig-1g.10gb", "1")}}}, nil, 0},
		{"MIG profile configured", corev1.PodSpec{Containers: []corev1.Container{{Resources: limits("nvidia.com/mig-1g.10gb", "1")}}}, []corev1.ResourceName{"nvidia.com/mig-1g.10gb"}, 1},
		{"upper case", corev1.PodSpec{Containers: []corev1.Container{{Resources: limits("example.com/GPU", "3")}}}, nil, 3},
		{"an init container holding more", corev1.PodSpec{
			InitContainers: []corev1.Container{{Resources: limits("nvidia.com/gpu", "4")}},
			Containers:     []corev1.Container{{Resources: limits("nvidia.com/gpu", "1")}},
		}, nil, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, podGPUs(&corev1.Pod{Spec: tc.spec}, gpuMatcher(tc.extra...)))
		})
	}
}
