package devnode

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// nodeIP is the node's address (status.hostIP of its pods).
const nodeIP = "127.0.0.1"

// phase computes the pod phase as the kubelet does.
func (w *podWorker) phase(pod *corev1.Pod) corev1.PodPhase {
	if w.final != "" {
		return w.final
	}
	policy := pod.Spec.RestartPolicy
	for _, c := range w.inits {
		if c.succeeded() {
			continue
		}
		if c.failedRun() && policy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		return corev1.PodPending
	}
	running, waiting, stopped, succeeded := 0, 0, 0, 0
	for _, c := range w.ctrs {
		switch {
		case c.running():
			running++
		case c.startFailed && c.exit == nil && policy != corev1.RestartPolicyNever:
			waiting++
		case c.exit != nil || c.startFailed:
			stopped++
			if c.succeeded() {
				succeeded++
			}
		default:
			waiting++
		}
	}
	switch {
	case running > 0:
		return corev1.PodRunning
	case waiting > 0 && stopped == 0:
		return corev1.PodPending
	case waiting > 0:
		return corev1.PodRunning
	case policy == corev1.RestartPolicyAlways:
		return corev1.PodRunning
	case stopped == succeeded:
		return corev1.PodSucceeded
	case policy == corev1.RestartPolicyNever:
		return corev1.PodFailed
	}
	return corev1.PodRunning
}

// containerStatus renders c's status.
func (w *podWorker) containerStatus(c *container, initPending bool, policy corev1.RestartPolicy) corev1.ContainerStatus {
	s := corev1.ContainerStatus{
		Name:         c.spec.Name,
		Image:        c.spec.Image,
		ImageID:      w.a.opts.image(c.spec.Image).imageID(c.spec.Image),
		RestartCount: c.restarts,
	}
	if c.prevExit != nil {
		s.LastTerminationState.Terminated = c.prevExit
	}
	switch {
	case c.running():
		s.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.proc.startedAt.Truncate(time.Second))}
		s.ContainerID = c.runID
		s.Ready = c.ready && c.started
		s.Started = ptr.To(c.started)
	case c.waiting != nil && (c.startFailed || c.exit == nil || c.shouldRestart(policy)) && w.final == "":
		s.State.Waiting = c.waiting.DeepCopy()
		if c.exit != nil {
			s.LastTerminationState.Terminated = c.exit
			s.ContainerID = c.exit.ContainerID
		}
		s.Started = ptr.To(false)
	case c.exit != nil && c.shouldRestart(policy) && w.final == "":
		s.State.Waiting = &corev1.ContainerStateWaiting{
			Reason:  "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off restarting failed container %s (exit code %d)", c.spec.Name, c.exit.ExitCode),
		}
		s.LastTerminationState.Terminated = c.exit
		s.ContainerID = c.exit.ContainerID
		s.Started = ptr.To(false)
	case c.exit != nil:
		s.State.Terminated = c.exit
		s.ContainerID = c.exit.ContainerID
		s.Started = ptr.To(false)
	case c.waiting != nil:
		s.State.Waiting = c.waiting.DeepCopy()
		s.Started = ptr.To(false)
	default:
		reason, msg := "ContainerCreating", w.sandboxErr
		if initPending && !c.init {
			reason = "PodInitializing"
		}
		if w.final != "" {
			reason, msg = "ContainerStatusUnknown", "the pod ended before this container started"
		}
		s.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
		s.Started = ptr.To(false)
	}
	return s
}

// computeStatus renders the pod's status on top of what the API holds (keeping fields
// devnode does not own, such as the scheduler's PodScheduled condition and qosClass).
func (w *podWorker) computeStatus(pod *corev1.Pod) corev1.PodStatus {
	st := *pod.Status.DeepCopy()
	policy := pod.Spec.RestartPolicy
	st.Phase = w.phase(pod)
	st.Reason, st.Message = w.reason, w.message
	st.HostIP, st.HostIPs = nodeIP, []corev1.HostIP{{IP: nodeIP}}
	if w.ip.IsValid() {
		st.PodIP, st.PodIPs = w.ip.String(), []corev1.PodIP{{IP: w.ip.String()}}
	}
	st.StartTime = w.startTime
	var incompleteInit, unready []string
	st.InitContainerStatuses = nil
	for _, c := range w.inits {
		cs := w.containerStatus(c, false, policy)
		if c.succeeded() {
			cs.Ready = true
		} else {
			incompleteInit = append(incompleteInit, c.spec.Name)
		}
		st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
	}
	st.ContainerStatuses = nil
	for _, c := range w.ctrs {
		cs := w.containerStatus(c, len(incompleteInit) > 0, policy)
		if !cs.Ready {
			unready = append(unready, c.spec.Name)
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	terminal := st.Phase == corev1.PodSucceeded || st.Phase == corev1.PodFailed
	conds := []corev1.PodCondition{
		condition(corev1.PodReadyToStartContainers, w.sandbox && !terminal, "", ""),
		condition(corev1.PodInitialized, len(incompleteInit) == 0, "ContainersNotInitialized", "containers with incomplete status: ["+strings.Join(incompleteInit, " ")+"]"),
	}
	ready := len(unready) == 0
	reason, msg := "ContainersNotReady", "containers with unready status: ["+strings.Join(unready, " ")+"]"
	if terminal {
		ready, reason, msg = false, "PodCompleted", ""
	}
	conds = append(conds, condition(corev1.ContainersReady, ready, reason, msg))
	podReady, podReason, podMsg := ready, reason, msg
	if ready {
		for _, g := range pod.Spec.ReadinessGates {
			if !conditionTrue(pod.Status.Conditions, g.ConditionType) {
				podReady, podReason, podMsg = false, "ReadinessGatesNotReady", fmt.Sprintf("corresponding condition of pod readiness gate %q does not exist or is not True", g.ConditionType)
				break
			}
		}
	}
	conds = append(conds, condition(corev1.PodReady, podReady, podReason, podMsg))
	st.Conditions = mergeConditions(pod.Status.Conditions, conds)
	return st
}

func condition(t corev1.PodConditionType, ok bool, reason, message string) corev1.PodCondition {
	if ok {
		return corev1.PodCondition{Type: t, Status: corev1.ConditionTrue}
	}
	return corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: reason, Message: message}
}

func conditionTrue(conds []corev1.PodCondition, t corev1.PodConditionType) bool {
	for _, c := range conds {
		if c.Type == t {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// mergeConditions replaces the conditions devnode owns and keeps the others; a condition
// whose status did not change keeps its transition time.
func mergeConditions(old, owned []corev1.PodCondition) []corev1.PodCondition {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	mine := map[corev1.PodConditionType]bool{}
	for _, c := range owned {
		mine[c.Type] = true
	}
	var out []corev1.PodCondition
	for _, c := range old {
		if !mine[c.Type] {
			out = append(out, c)
		}
	}
	for _, c := range owned {
		c.LastTransitionTime = now
		for _, o := range old {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
				c.LastProbeTime = o.LastProbeTime
			}
		}
		out = append(out, c)
	}
	return out
}

// writeStatus sends the pod's status to the API when it changed; false means it failed and
// should be tried again.
func (w *podWorker) writeStatus(ctx context.Context, pod *corev1.Pod) bool {
	st := w.computeStatus(pod)
	if equality.Semantic.DeepEqual(pod.Status, st) {
		w.lastStatus, w.writtenFrom = &st, pod.ResourceVersion
		return true
	}
	if w.lastStatus != nil && pod.ResourceVersion == w.writtenFrom && equality.Semantic.DeepEqual(*w.lastStatus, st) {
		return true // the API has it; our copy of the pod is older than our write
	}
	pods := w.a.client.CoreV1().Pods(pod.Namespace)
	for attempt := 0; ; attempt++ {
		p := pod.DeepCopy()
		p.Status = st
		_, err := pods.UpdateStatus(ctx, p, metav1.UpdateOptions{})
		if err == nil {
			w.lastStatus, w.writtenFrom = &st, pod.ResourceVersion
			return true
		}
		if apierrors.IsNotFound(err) {
			return true
		}
		if !apierrors.IsConflict(err) || attempt > 2 {
			if ctx.Err() == nil {
				w.log.Error("updating the pod status", "err", err)
			}
			return false
		}
		fresh, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil || fresh.UID != w.uid {
			return apierrors.IsNotFound(err) || (err == nil && fresh.UID != w.uid)
		}
		pod = fresh
		st = w.computeStatus(pod)
		if equality.Semantic.DeepEqual(pod.Status, st) {
			// Our copy was older than the API's, which has this status already (our own
			// earlier write, most often): writing it again would only make a new version,
			// whose watch event makes the next sync of a stale copy conflict again.
			w.lastStatus, w.writtenFrom = &st, pod.ResourceVersion
			return true
		}
	}
}
