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
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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

	dir        string
	ip         netip.Addr
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
	}
	if err := w.writeHostsLocked(); err != nil {
		return err
	}
	uid, fsGroup := volumeOwner(pod)
	vw := &volumeWriter{dir: filepath.Join(w.dir, volumesDirName), facts: w.facts(pod), get: w.a, tokens: w.a, uid: uid, fsGroup: fsGroup}
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

// retryLater makes c wait with reason and message and try again after delay.
func (w *podWorker) retryLater(c *container, reason, message string, delay time.Duration, wake func(time.Time)) {
	c.waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: message}
	c.nextStart = time.Now().Add(delay)
	wake(c.nextStart)
}

// startFailure records a failed start attempt, which counts as a failed run.
func (w *podWorker) startFailure(c *container, reason, message string, wake func(time.Time)) {
	w.log.Info("container failed to start", "container", c.spec.Name, "reason", reason, "message", message)
	c.startFailed = true
	w.retryLater(c, reason, message, w.nextBackoff(c, 0), wake)
}

// nextBackoff returns the delay before c's next start and doubles it for the time after.
func (w *podWorker) nextBackoff(c *container, ran time.Duration) time.Duration {
	o := w.a.opts
	if c.backoff == 0 || ran > 2*o.MaxRestartBackoff {
		c.backoff = o.RestartBackoff
	}
	d := c.backoff
	c.backoff = min(2*c.backoff, o.MaxRestartBackoff)
	return d
}

func (c *container) owner(uid types.UID) string { return string(uid) + "/" + c.spec.Name }

// start starts a run of c.
func (w *podWorker) start(ctx context.Context, pod *corev1.Pod, c *container, wake func(time.Time)) {
	a := w.a
	spec := c.spec
	restarts := c.restarts
	if c.hasRun {
		restarts++
	}
	imageDir := a.opts.imageDir(spec.Image)
	passwd := "/etc/passwd"
	if imageDir != "" {
		if _, err := os.Stat(filepath.Join(imageDir, "etc", "passwd")); err == nil {
			passwd = filepath.Join(imageDir, "etc", "passwd")
		}
	}
	uid, gid, groups, err := credentials(pod, spec, passwd)
	if err != nil {
		w.retryLater(c, "CreateContainerConfigError", err.Error(), 2*time.Second, wake)
		return
	}
	home := "/"
	if h, _, ok := lookupPasswd(passwd, uid); ok && h != "" {
		home = h
	}
	env, err := containerEnv(ctx, a, w.facts(pod), spec, a.serviceEnv(), home)
	if err != nil {
		w.retryLater(c, "CreateContainerConfigError", err.Error(), 2*time.Second, wake)
		return
	}
	binds, err := mounts(pod, spec, w.volumes, env)
	if err != nil {
		w.retryLater(c, "CreateContainerConfigError", err.Error(), 2*time.Second, wake)
		return
	}
	argv, err := command(spec, spec.Image, env)
	if err != nil {
		w.startFailure(c, "CreateContainerError", err.Error(), wake)
		return
	}
	devices, err := a.gpus.allocate(c.owner(w.uid), spec, w.prevGPUs[spec.Name])
	if err != nil {
		w.retryLater(c, "ContainerCreating", "waiting for devices: "+err.Error(), time.Second, wake)
		return
	}
	if len(devices) > 0 {
		env.Set(VisibleDevicesEnv, joinComma(devices))
	}
	runDir := containerRunDir(w.dir, spec.Name, restarts)
	if err := os.RemoveAll(runDir); err != nil {
		w.startFailure(c, "RunContainerError", err.Error(), wake)
		return
	}
	for _, d := range []string{rootfsDirName, upperDirName, workDirName} {
		if err := os.MkdirAll(filepath.Join(runDir, d), 0o755); err != nil {
			w.startFailure(c, "RunContainerError", err.Error(), wake)
			return
		}
	}
	logPath := LogPath(a.opts.Root, pod.Namespace, pod.Name, pod.UID, spec.Name, restarts)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o700); err != nil {
		w.startFailure(c, "RunContainerError", err.Error(), wake)
		return
	}
	noNewPrivs := spec.SecurityContext != nil && spec.SecurityContext.AllowPrivilegeEscalation != nil && !*spec.SecurityContext.AllowPrivilegeEscalation
	hs := &helperSpec{
		Rootfs: filepath.Join(runDir, rootfsDirName), Upper: filepath.Join(runDir, upperDirName), Work: filepath.Join(runDir, workDirName),
		ImageDir: imageDir, Mounts: binds, Hosts: filepath.Join(w.dir, hostsFileName), Hostname: podHostname(pod),
		Argv: argv, Env: env.Environ(), WorkingDir: spec.WorkingDir,
		UID: uid, GID: gid, Groups: groups, NoNewPrivs: noNewPrivs,
	}
	p, failure, err := startProc(a.spawner, a.opts.HelperPath, hs, logPath)
	if err != nil {
		a.gpus.release(c.owner(w.uid))
		w.startFailure(c, "RunContainerError", err.Error(), wake)
		return
	}
	if failure != nil {
		a.gpus.release(c.owner(w.uid))
		appendLog(logPath, "devnode: "+failure.Reason+": "+failure.Message)
		w.startFailure(c, failure.Reason, failure.Message, wake)
		return
	}
	if c.exit != nil {
		c.prevExit = c.exit
	}
	c.proc, c.exit, c.waiting, c.startFailed, c.killReason = p, nil, nil, false, ""
	c.hasRun, c.restarts, c.runID, c.logPath = true, restarts, containerID(w.uid, spec.Name, restarts), logPath
	c.env, c.uid, c.gid, c.groups = env.Environ(), uid, gid, groups
	c.ready, c.started = false, spec.StartupProbe == nil
	w.log.Info("container started", "container", spec.Name, "pid", p.pid, "restartCount", restarts, "command", argv[0])
	w.startProbes(c, p, pod)
	w.saveState()
	go w.watch(c, p)
}

// watch records the end of a run.
func (w *podWorker) watch(c *container, p *proc) {
	<-p.done
	w.mu.Lock()
	w.recordExit(c, p)
	w.mu.Unlock()
	w.a.gpuReleased()
	w.poke()
}

// recordExit turns c's run p into a termination, once; called with w.mu held.
func (w *podWorker) recordExit(c *container, p *proc) {
	if c.proc != p {
		return
	}
	if c.stopProbes != nil {
		c.stopProbes()
		c.stopProbes = nil
	}
	c.exit = terminatedState(p, c.runID, c.spec, c.logPath, c.killReason)
	c.proc, c.ready, c.started = nil, false, false
	w.a.gpus.release(c.owner(w.uid))
	c.nextStart = time.Now().Add(w.nextBackoff(c, time.Since(p.startedAt)))
	w.log.Info("container exited", "container", c.spec.Name, "exitCode", c.exit.ExitCode, "reason", c.exit.Reason)
}

// terminate carries out a graceful deletion: SIGTERM to every container's process group,
// SIGKILL once the grace period is over, then the final status and the deletion of the pod
// object with grace 0, as the kubelet does.
func (w *podWorker) terminate(ctx context.Context, pod *corev1.Pod) (time.Time, bool) {
	grace := time.Duration(30) * time.Second
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	if w.termStart.IsZero() {
		w.termStart = time.Now()
		for _, c := range append(append([]*container{}, w.inits...), w.ctrs...) {
			if c.running() {
				if c.stopProbes != nil {
					c.stopProbes()
					c.stopProbes = nil
				}
				w.log.Info("stopping container", "container", c.spec.Name, "gracePeriod", grace)
				if c.spec.Lifecycle != nil && c.spec.Lifecycle.PreStop != nil {
					hook, target, p := c.spec.Lifecycle.PreStop, c.target, c.proc
					go func() {
						hctx, cancel := context.WithTimeout(w.ctx, grace)
						defer cancel()
						if err := target.hook(hctx, hook, grace); err != nil {
							w.log.Info("preStop hook failed", "container", target.c.Name, "err", err)
						}
						p.signalGroup(syscall.SIGTERM)
					}()
					continue
				}
				c.proc.signalGroup(syscall.SIGTERM)
			}
		}
	}
	deadline := w.termStart.Add(grace)
	if w.anyRunning() && time.Now().Before(deadline) {
		return deadline, false
	}
	w.stopAll(0, "")
	w.release()
	if w.final == "" {
		w.final = corev1.PodFailed
		if allSucceeded(w.ctrs) {
			w.final = corev1.PodSucceeded
		}
	}
	w.writeStatus(ctx, pod)
	err := w.a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &w.uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		w.log.Error("deleting the pod", "err", err)
		return time.Now().Add(time.Second), false
	}
	w.removeDir()
	w.log.Info("pod deleted")
	return time.Time{}, true
}

func allSucceeded(cs []*container) bool {
	for _, c := range cs {
		if !c.succeeded() {
			return false
		}
	}
	return true
}

func (w *podWorker) anyRunning() bool {
	for _, c := range append(append([]*container{}, w.inits...), w.ctrs...) {
		if c.running() {
			return true
		}
	}
	return false
}

// stopAll stops every running container with grace; called with w.mu held, it lets go of
// the lock while the processes stop.
func (w *podWorker) stopAll(grace time.Duration, reason string) {
	var procs []*proc
	for _, c := range append(append([]*container{}, w.inits...), w.ctrs...) {
		if c.running() {
			if c.stopProbes != nil {
				c.stopProbes()
				c.stopProbes = nil
			}
			if reason != "" {
				c.killReason = reason
			}
			procs = append(procs, c.proc)
		}
	}
	if len(procs) == 0 {
		return
	}
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { p.stop(grace) })
	}
	wg.Wait()
	w.mu.Lock()
	for _, c := range append(append([]*container{}, w.inits...), w.ctrs...) {
		if c.proc != nil {
			select {
			case <-c.proc.done:
				w.recordExit(c, c.proc)
			default:
			}
		}
	}
}

// shutdown stops the pod's containers because the agent stops; the pod keeps its directory
// and state for the next devnode.
func (w *podWorker) shutdown() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopAll(w.a.opts.ShutdownGracePeriod, "devnode stopped")
	w.saveState()
	w.a.gpus.releasePrefix(string(w.uid) + "/")
	if w.ip.IsValid() {
		w.a.podIPs.release(w.ip)
	}
}

// release gives the pod's IP and GPUs back once nothing runs in it.
func (w *podWorker) release() {
	if w.anyRunning() {
		return
	}
	w.a.gpus.releasePrefix(string(w.uid) + "/")
	if w.ip.IsValid() {
		w.a.podIPs.release(w.ip)
	}
	w.a.gpuReleased()
}

func (w *podWorker) removeDir() {
	if err := os.RemoveAll(w.dir); err != nil {
		w.log.Error("removing the pod directory", "dir", w.dir, "err", err)
	}
}

// saveState records the pod's IP, devices and processes.
func (w *podWorker) saveState() {
	if w.pod == nil {
		return
	}
	st := &podState{Namespace: w.pod.Namespace, Name: w.pod.Name, UID: w.uid, Devices: map[string][]string{}, Processes: map[string]int{}}
	if w.ip.IsValid() {
		st.PodIP = w.ip.String()
	}
	for _, c := range append(append([]*container{}, w.inits...), w.ctrs...) {
		if ids := w.a.gpus.held(c.owner(w.uid)); len(ids) > 0 {
			st.Devices[c.spec.Name] = ids
		}
		if c.proc != nil {
			st.Processes[c.spec.Name] = c.proc.pid
		}
	}
	if err := st.write(w.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.log.Error("saving the pod state", "err", err)
	}
}

func appendLog(path, line string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(line + "\n")
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}
