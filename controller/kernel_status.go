package controller

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// Reasons a kernel's status gives.
const (
	ReasonPodCreated         = "PodCreated"
	ReasonScheduling         = "Scheduling"
	ReasonUnschedulable      = "Unschedulable"
	ReasonStarting           = "Starting"
	ReasonPodReady           = "PodReady"
	ReasonImagePullFailed    = "ImagePullFailed"
	ReasonContainerCannotRun = "ContainerCannotRun"
	ReasonQueued             = "Queued"
	ReasonStartDeadline      = "StartDeadlineExceeded"
	ReasonOOMKilled          = "OOMKilled"
	ReasonKernelExited       = "KernelExited"
	ReasonInitFailed         = "InitFailed"
	ReasonPodFailed          = "PodFailed"
	ReasonCompleted          = "Completed"
	ReasonPodDeleted         = "PodDeleted"
	ReasonSuspended          = "Suspended"
	ReasonKernelSpecNotFound = "KernelSpecNotFound"
	ReasonTemplateNotFound   = "TemplateNotFound"
	ReasonInvalidSpec        = "InvalidSpec"
	ReasonConflict           = "Conflict"
)

// podReport is what a kernel's status takes from its pod.
type podReport struct {
	Phase          ejv1.KernelPhase
	Reason         string
	Message        string
	PodIP          string
	StartTime      *metav1.Time
	CompletionTime *metav1.Time
	GPUs           int32
}

// imagePullReasons are the waiting reasons of a container whose image cannot be pulled.
var imagePullReasons = map[string]bool{
	"ErrImagePull": true, "ImagePullBackOff": true, "InvalidImageName": true, "ErrImageNeverPull": true,
}

// cannotRunReasons are the waiting reasons of a container the node cannot start (its command
// is missing from the image, for example): the kubelet retries, but a kernel should fail at
// once with the reason rather than wait for its start deadline.
var cannotRunReasons = map[string]bool{"CreateContainerError": true, "RunContainerError": true}

// releasesPod reports whether a kernel that failed for this reason has its pod deleted at
// once, so the pod holds no node resources (a GPU) for nothing.
func releasesPod(reason string) bool {
	return reason == ReasonImagePullFailed || reason == ReasonContainerCannotRun || reason == ReasonStartDeadline
}

// reportPod says what a kernel pod's state means for the kernel: Pending until it is
// scheduled (with the scheduler's reason when it cannot be), Starting until it is Ready,
// Running while Ready, and Failed or Succeeded with the reason once it has ended or its image
// cannot be pulled. isGPU tells which resources count as GPUs.
func reportPod(pod *corev1.Pod, isGPU func(corev1.ResourceName) bool) podReport {
	r := podReport{StartTime: pod.Status.StartTime}
	kernel := kernelContainerName(pod)
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		r.Phase, r.Reason, r.Message = ejv1.KernelSucceeded, ReasonCompleted, "the kernel exited with code 0"
		r.CompletionTime = finishedAt(pod, kernel)
		return r
	case corev1.PodFailed:
		r.Phase = ejv1.KernelFailed
		r.Reason, r.Message = failure(pod, kernel)
		r.CompletionTime = finishedAt(pod, kernel)
		return r
	}
	r.GPUs = podGPUs(pod, isGPU)
	r.PodIP = pod.Status.PodIP
	for _, cs := range append(append([]corev1.ContainerStatus(nil), pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...) {
		w := cs.State.Waiting
		switch {
		case w != nil && imagePullReasons[w.Reason]:
			r.Phase, r.Reason = ejv1.KernelFailed, ReasonImagePullFailed
			r.Message = fmt.Sprintf("container %s cannot pull image %q (%s): %s; fix the kernelspec's image", cs.Name, cs.Image, w.Reason, w.Message)
			r.PodIP = ""
			return r
		case w != nil && cannotRunReasons[w.Reason]:
			r.Phase, r.Reason = ejv1.KernelFailed, ReasonContainerCannotRun
			r.Message = fmt.Sprintf("container %s cannot start in image %q (%s): %s; fix the kernelspec's command or image", cs.Name, cs.Image, w.Reason, w.Message)
			r.PodIP = ""
			return r
		}
	}
	if podCondition(pod, corev1.PodReady) == corev1.ConditionTrue {
		r.Phase, r.Reason = ejv1.KernelRunning, ReasonPodReady
		r.Message = fmt.Sprintf("the kernel accepts connections at %s", pod.Status.PodIP)
		return r
	}
	if c := findPodCondition(pod, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
		r.Phase, r.Reason, r.Message = ejv1.KernelPending, ReasonUnschedulable, "waiting for a node: "+c.Message
		return r
	}
	if pod.Spec.NodeName == "" && podCondition(pod, corev1.PodScheduled) != corev1.ConditionTrue {
		r.Phase, r.Reason, r.Message = ejv1.KernelPending, ReasonScheduling, "waiting for a node"
		return r
	}
	r.Phase, r.Reason = ejv1.KernelStarting, ReasonStarting
	r.Message = startingMessage(pod, kernel)
	return r
}

// startingMessage says what a scheduled kernel pod is doing: pulling its image, running its
// init containers, or starting the kernel process.
func startingMessage(pod *corev1.Pod, kernel string) string {
	for _, cs := range pod.Status.InitContainerStatuses {
		if cs.State.Terminated != nil && cs.State.Terminated.ExitCode == 0 {
			continue
		}
		if cs.State.Waiting != nil && cs.ImageID == "" {
			return fmt.Sprintf("pulling image %s on node %s", cs.Image, pod.Spec.NodeName)
		}
		return fmt.Sprintf("preparing the kernel's pod on node %s", pod.Spec.NodeName)
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != kernel {
			continue
		}
		if w := cs.State.Waiting; w != nil {
			if cs.ImageID == "" {
				return fmt.Sprintf("pulling image %s on node %s", cs.Image, pod.Spec.NodeName)
			}
			msg := fmt.Sprintf("starting the kernel's container on node %s (%s", pod.Spec.NodeName, w.Reason)
			if w.Message != "" {
				msg += ": " + w.Message
			}
			return msg + ")"
		}
	}
	return "starting the kernel"
}

// failure explains a failed pod: OOM kill, the kernel's exit code, a failed init container,
// or the pod's own reason (eviction, deadline).
func failure(pod *corev1.Pod, kernel string) (reason, message string) {
	for _, cs := range pod.Status.InitContainerStatuses {
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return ReasonInitFailed, fmt.Sprintf("init container %s exited with code %d%s", cs.Name, t.ExitCode, suffix(t.Reason, t.Message))
		}
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name != kernel {
			continue
		}
		if t := cs.State.Terminated; t != nil {
			if t.Reason == "OOMKilled" {
				msg := "the kernel was killed for using more memory than its limit"
				if lim := memoryLimit(pod, kernel); lim != "" {
					msg += " of " + lim
				}
				return ReasonOOMKilled, msg
			}
			return ReasonKernelExited, fmt.Sprintf("the kernel exited with code %d%s", t.ExitCode, suffix(t.Reason, lastLine(t.Message)))
		}
	}
	if pod.Status.Reason != "" {
		return pod.Status.Reason, pod.Status.Message
	}
	msg := pod.Status.Message
	if msg == "" {
		msg = "the kernel pod failed"
	}
	return ReasonPodFailed, msg
}

// lastLine is the last non-empty line of a termination message (the end of a kernel's log:
// a Python exception's line, or the launcher's reason), at most 500 bytes.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	line := strings.TrimSpace(lines[len(lines)-1])
	if len(line) > 500 {
		line = line[:500] + "..."
	}
	return line
}

func suffix(reason, message string) string {
	s := ""
	if reason != "" && reason != "Error" {
		s += " (" + reason + ")"
	}
	if message = strings.TrimSpace(message); message != "" {
		s += ": " + message
	}
	return s
}

func memoryLimit(pod *corev1.Pod, container string) string {
	for _, c := range pod.Spec.Containers {
		if c.Name == container {
			if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
				return q.String()
			}
		}
	}
	return ""
}

func finishedAt(pod *corev1.Pod, container string) *metav1.Time {
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == container && cs.State.Terminated != nil && !cs.State.Terminated.FinishedAt.IsZero() {
			t := cs.State.Terminated.FinishedAt
			return &t
		}
	}
	return nil
}

// kernelContainerName is the name of the pod's kernel container.
func kernelContainerName(pod *corev1.Pod) string {
	if i := mainContainer(&pod.Spec, ejv1.KernelContainerName); i >= 0 {
		return pod.Spec.Containers[i].Name
	}
	return ""
}

func findPodCondition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func podCondition(pod *corev1.Pod, t corev1.PodConditionType) corev1.ConditionStatus {
	if c := findPodCondition(pod, t); c != nil {
		return c.Status
	}
	return corev1.ConditionUnknown
}

// podGPUs is the number of GPUs a pod holds: the sum over its containers of the limits of
// GPU-like resources, or the largest such limit of an init container when that is more (the
// scheduler reserves the larger of the two).
func podGPUs(pod *corev1.Pod, isGPU func(corev1.ResourceName) bool) int32 {
	sum := func(cs []corev1.Container, max bool) int64 {
		var n int64
		for _, c := range cs {
			var m int64
			for name, q := range c.Resources.Limits {
				if isGPU(name) {
					m += q.Value()
				}
			}
			if max {
				n = maxInt64(n, m)
			} else {
				n += m
			}
		}
		return n
	}
	return int32(maxInt64(sum(pod.Spec.Containers, false), sum(pod.Spec.InitContainers, true)))
}

func maxInt64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// gpuMatcher returns the test for GPU-like resource names: names containing "gpu" (any
// case), and the extra names given (MIG profiles such as nvidia.com/mig-1g.10gb).
func gpuMatcher(extra ...corev1.ResourceName) func(corev1.ResourceName) bool {
	set := map[corev1.ResourceName]bool{}
	for _, n := range extra {
		if n != "" {
			set[n] = true
		}
	}
	return func(n corev1.ResourceName) bool {
		return set[n] || strings.Contains(strings.ToLower(string(n)), "gpu")
	}
}
