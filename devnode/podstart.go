package devnode

import (
	"context"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

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
	image := a.opts.image(spec.Image)
	passwd := image.passwd()
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
		Mounts: binds, Hosts: filepath.Join(w.dir, hostsFileName), Hostname: podHostname(pod),
		Argv: argv, Env: env.Environ(), WorkingDir: spec.WorkingDir,
		UID: uid, GID: gid, Groups: groups, NoNewPrivs: noNewPrivs,
	}
	if w.net != nil {
		hs.netns = w.net.ns
	}
	if image.root {
		hs.RootDir = image.dir
	} else {
		hs.ImageDir = image.dir
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
