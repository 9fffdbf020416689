package devnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// podWorker runs one pod: it owns the pod's sandbox (directory, IP, volumes) and containers,
// and is the only writer of the pod's status. Everything that happens to the pod (an update
// from the API, a process exit, a probe result, a timer) pokes it, and sync brings the pod to
// what its spec and deletion state ask for.
type podWorker struct {
	a    *Agent
	uid  types.UID
	log  *slog.Logger
	kick chan struct{}
	ctx  context.Context

	mu  sync.Mutex
	pod *corev1.Pod // the latest from the API; nil once deleted

	dir string
	ip  netip.Addr
	// net is the pod's network namespace (nil for hostNetwork pods and before the sandbox).
	net        *podNetwork
	volumes    map[string]string
	sandbox    bool
	sandboxErr string
	inits      []*container
	ctrs       []*container
	prevGPUs   map[string][]string
	startTime  *metav1.Time
	final      corev1.PodPhase
	reason     string
	message    string
	termStart  time.Time
	terminated bool

	lastStatus  *corev1.PodStatus
	writtenFrom string // resourceVersion our last status write was based on
}

func newPodWorker(ctx context.Context, a *Agent, pod *corev1.Pod) *podWorker {
	w := &podWorker{
		a: a, uid: pod.UID, pod: pod, ctx: ctx,
		log:  a.log.With("pod", pod.Namespace+"/"+pod.Name),
		kick: make(chan struct{}, 1),
		dir:  PodDir(a.opts.Root, pod.Namespace, pod.Name, pod.UID),
	}
	for i := range pod.Spec.InitContainers {
		w.inits = append(w.inits, &container{spec: &pod.Spec.InitContainers[i], init: true})
	}
	for i := range pod.Spec.Containers {
		w.ctrs = append(w.ctrs, &container{spec: &pod.Spec.Containers[i]})
	}
	w.adoptStatus(pod)
	return w
}

// adoptStatus picks up what the API says about a pod devnode ran before it restarted:
// restart counts, finished runs, start time, IP and GPUs. A run the API shows as running
// died with the previous devnode; it counts as a failed run.
func (w *podWorker) adoptStatus(pod *corev1.Pod) {
	if st, err := readPodState(w.dir); err == nil && st != nil && st.UID == pod.UID {
		w.ip, _ = netip.ParseAddr(st.PodIP)
		w.prevGPUs = st.Devices
	}
	if !w.ip.IsValid() && pod.Status.PodIP != "" {
		w.ip, _ = netip.ParseAddr(pod.Status.PodIP)
	}
	w.startTime = pod.Status.StartTime
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		w.final = pod.Status.Phase
		w.reason, w.message = pod.Status.Reason, pod.Status.Message
	}
	adopt := func(list []*container, statuses []corev1.ContainerStatus) {
		for _, c := range list {
			for _, s := range statuses {
				if s.Name != c.spec.Name {
					continue
				}
				c.restarts = s.RestartCount
				c.backoff = w.a.opts.RestartBackoff
				switch {
				case s.State.Terminated != nil:
					c.hasRun, c.exit = true, s.State.Terminated.DeepCopy()
				case s.State.Running != nil:
					c.hasRun = true
					c.exit = &corev1.ContainerStateTerminated{
						ExitCode: 137, Reason: "ContainerStatusUnknown", ContainerID: s.ContainerID,
						Message:    "The container was running when devnode stopped; devnode does not keep containers across its restarts",
						StartedAt:  s.State.Running.StartedAt,
						FinishedAt: metav1.NewTime(time.Now().Truncate(time.Second)),
					}
				case s.LastTerminationState.Terminated != nil:
					c.hasRun, c.exit = true, s.LastTerminationState.Terminated.DeepCopy()
				}
			}
		}
	}
	adopt(w.inits, pod.Status.InitContainerStatuses)
	adopt(w.ctrs, pod.Status.ContainerStatuses)
}

// update hands the worker the latest pod (nil: deleted).
func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) poke() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run syncs the pod until it is gone from the API, or ctx ends (the agent stops: its
// containers are stopped, the pod stays as it is in the API).
func (w *podWorker) run() {
	for {
		next, finished := w.sync(w.ctx)
		if finished {
			return
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if !next.IsZero() {
			timer = time.NewTimer(max(time.Until(next), 10*time.Millisecond))
			fire = timer.C
		}
		select {
		case <-w.ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			w.shutdown()
			return
		case <-w.kick:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// sync does what the pod needs now and returns when to look again (zero: on the next poke)
// and whether the worker is done.
func (w *podWorker) sync(ctx context.Context) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	pod := w.pod
	if pod == nil {
		w.stopAll(2*time.Second, "")
		w.release()
		w.removeDir()
		return time.Time{}, true
	}
	if pod.DeletionTimestamp != nil {
		return w.terminate(ctx, pod)
	}
	if w.startTime == nil {
		w.startTime = ptr.To(metav1.NewTime(time.Now().Truncate(time.Second)))
	}
	var next time.Time
	wake := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	if w.final == "" {
		if !w.sandbox {
			if err := w.setupSandbox(ctx, pod); err != nil {
				var unsupported *unsupportedError
				if errors.As(err, &unsupported) {
					w.fail("Unsupported", err.Error())
				} else {
					w.sandboxErr = err.Error()
					w.log.Info("pod sandbox not ready", "reason", err)
					wake(time.Now().Add(2 * time.Second))
				}
			}
		}
		if w.sandbox {
			w.runContainers(ctx, pod, wake)
		}
		if ph := w.phase(pod); ph == corev1.PodSucceeded || ph == corev1.PodFailed {
			w.final = ph
		}
	}
	if w.final != "" {
		w.release()
	}
	if !w.writeStatus(ctx, pod) {
		wake(time.Now().Add(time.Second))
	}
	return next, false
}

// fail ends the pod: it fails with reason and message.
func (w *podWorker) fail(reason, message string) {
	w.final, w.reason, w.message = corev1.PodFailed, reason, message
	w.log.Info("pod failed", "reason", reason, "message", message)
}

// setupSandbox prepares what every container of the pod shares: directory, IP, hosts file
// and volumes.
func (w *podWorker) setupSandbox(ctx context.Context, pod *corev1.Pod) error {
	if err := validatePod(pod); err != nil {
		return err
	}
	for _, d := range []string{w.dir, filepath.Join(w.dir, logsDirName), filepath.Join(w.dir, containerDirs)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("creating the pod directory: %w", err)
		}
	}
	if err := os.Chmod(w.dir, 0o711); err != nil {
		return err
	}
	if pod.Spec.HostNetwork {
		w.ip = netip.MustParseAddr(nodeIP)
	} else {
		ip, err := w.a.podIPs.allocate(w.ip)
		if err != nil {
			return err
		}
		w.ip = ip
		if w.net == nil {
			if w.net, err = w.a.network.attach(w.a.spawner, w.ip); err != nil {
				return err
			}
		}
	}
	if err := w.writeHostsLocked(); err != nil {
		return err
	}
	uid, fsGroup := volumeOwner(pod)
	vw := &volumeWriter{dir: filepath.Join(w.dir, volumesDirName), facts: w.facts(pod), get: w.a, claims: w.a, tokens: w.a, uid: uid, fsGroup: fsGroup}
	vols, err := vw.setup(ctx)
	if err != nil {
		return err
	}
	w.volumes, w.sandbox, w.sandboxErr = vols, true, ""
	w.saveState()
	return nil
}

// validatePod refuses what devnode cannot run.
func validatePod(pod *corev1.Pod) error {
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			for kind, p := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe} {
				if p != nil && p.GRPC != nil {
					return &unsupportedError{msg: fmt.Sprintf("container %q: %s.grpc is not supported by devnode: use httpGet, tcpSocket or exec", c.Name, kind)}
				}
			}
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			return &unsupportedError{msg: fmt.Sprintf("init container %q: sidecar init containers (restartPolicy: Always) are not supported by devnode: make it a regular container", c.Name)}
		}
	}
	return nil
}

func (w *podWorker) facts(pod *corev1.Pod) *podFacts {
	return &podFacts{pod: pod, podIP: w.ip, hostIP: nodeIP, node: w.a.allocatable()}
}

// runContainers starts what is due: the first unfinished init container, then every
// container that is not running and should (re)start.
func (w *podWorker) runContainers(ctx context.Context, pod *corev1.Pod, wake func(time.Time)) {
	now := time.Now()
	policy := pod.Spec.RestartPolicy
	for _, c := range w.inits {
		if c.succeeded() {
			continue
		}
		if c.running() {
			return
		}
		if c.failedRun() && policy == corev1.RestartPolicyNever {
			return
		}
		if now.Before(c.nextStart) {
			wake(c.nextStart)
			return
		}
		w.start(ctx, pod, c, wake)
		return
	}
	for _, c := range w.ctrs {
		if c.running() || !c.shouldRestart(policy) {
			continue
		}
		if now.Before(c.nextStart) {
			wake(c.nextStart)
			continue
		}
		w.start(ctx, pod, c, wake)
	}
}
