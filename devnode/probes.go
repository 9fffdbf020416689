package devnode

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type probeKind string

const (
	readiness probeKind = "Readiness"
	liveness  probeKind = "Liveness"
	startup   probeKind = "Startup"
)

// startProbes runs c's probes for the run p until the run ends; called with w.mu held.
func (w *podWorker) startProbes(c *container, p *proc, pod *corev1.Pod) {
	ctx, cancel := context.WithCancel(w.ctx)
	c.stopProbes = cancel
	target := probeTarget{pod: pod, c: c.spec, ip: w.ip.String(), pid: p.pid, env: c.env, uid: c.uid, gid: c.gid, groups: c.groups, spawner: w.a.spawner}
	c.target = target
	for kind, pr := range map[probeKind]*corev1.Probe{readiness: c.spec.ReadinessProbe, liveness: c.spec.LivenessProbe, startup: c.spec.StartupProbe} {
		if pr == nil {
			continue
		}
		go w.probeLoop(ctx, c, p, kind, pr, target)
	}
	if c.spec.Lifecycle != nil && c.spec.Lifecycle.PostStart != nil {
		h := c.spec.Lifecycle.PostStart
		go func() {
			if err := target.hook(ctx, h, 30*time.Second); err != nil && ctx.Err() == nil {
				w.kill(c, p, "PostStartHookError: "+err.Error(), pod)
			}
		}()
	}
}

// probeLoop runs one probe every period and acts on its results: readiness sets the
// container's ready flag, a startup success lets the other probes begin, and liveness or
// startup failures past the threshold stop the run.
func (w *podWorker) probeLoop(ctx context.Context, c *container, p *proc, kind probeKind, pr *corev1.Probe, target probeTarget) {
	period := time.Duration(max(pr.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second
	successes, failures := int32(0), int32(0)
	successThreshold, failureThreshold := max(pr.SuccessThreshold, 1), max(pr.FailureThreshold, 1)
	t := time.NewTimer(time.Duration(pr.InitialDelaySeconds) * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(period)
		if kind != startup {
			w.mu.Lock()
			started := c.started && c.proc == p
			w.mu.Unlock()
			if !started {
				continue
			}
		}
		err := target.handle(ctx, pr.ProbeHandler, timeout)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			successes, failures = successes+1, 0
		} else {
			successes, failures = 0, failures+1
		}
		switch kind {
		case readiness:
			if successes == successThreshold || failures == failureThreshold {
				w.setFlag(c, p, func() bool { changed := c.ready != (err == nil); c.ready = err == nil; return changed })
			}
		case startup:
			if err == nil && successes >= successThreshold {
				w.setFlag(c, p, func() bool { c.started = true; return true })
				return
			}
			if failures >= failureThreshold {
				w.kill(c, p, "Startup probe failed: "+err.Error(), target.pod)
				return
			}
		case liveness:
			if failures >= failureThreshold {
				w.kill(c, p, "Liveness probe failed: "+err.Error(), target.pod)
				return
			}
		}
	}
}

// setFlag changes a probe-owned flag of the run p and pokes the worker when it changed.
func (w *podWorker) setFlag(c *container, p *proc, set func() bool) {
	w.mu.Lock()
	changed := c.proc == p && set()
	w.mu.Unlock()
	if changed {
		w.poke()
	}
}

// kill stops the run p of c for reason (it ends as a failed run and restarts per policy).
func (w *podWorker) kill(c *container, p *proc, reason string, pod *corev1.Pod) {
	w.mu.Lock()
	if c.proc != p {
		w.mu.Unlock()
		return
	}
	c.killReason = reason
	w.mu.Unlock()
	w.log.Info("killing container", "container", c.spec.Name, "reason", reason)
	grace := 30 * time.Second
	if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	go p.stop(grace)
}

// probeTarget is where probes and hooks of one run go.
type probeTarget struct {
	pod     *corev1.Pod
	c       *corev1.Container
	ip      string
	pid     int
	env     []string
	uid     uint32
	gid     uint32
	groups  []uint32
	spawner *spawner
}

// handle runs one probe or hook handler; nil means success.
func (t probeTarget) handle(ctx context.Context, h corev1.ProbeHandler, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case h.HTTPGet != nil:
		return t.httpGet(ctx, h.HTTPGet)
	case h.TCPSocket != nil:
		port, err := t.port(h.TCPSocket.Port)
		if err != nil {
			return err
		}
		host := h.TCPSocket.Host
		if host == "" {
			host = t.ip
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	case h.Exec != nil:
		return t.exec(ctx, h.Exec.Command)
	}
	return errors.New("the probe has no handler devnode supports (httpGet, tcpSocket, exec)")
}

// hook runs a lifecycle handler (exec, httpGet, tcpSocket or sleep).
func (t probeTarget) hook(ctx context.Context, h *corev1.LifecycleHandler, timeout time.Duration) error {
	if h.Sleep != nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
		return nil
	}
	return t.handle(ctx, corev1.ProbeHandler{Exec: h.Exec, HTTPGet: h.HTTPGet, TCPSocket: h.TCPSocket}, timeout)
}

// port resolves a probe port: a number, or the name of one of the container's ports.
func (t probeTarget) port(p intstr.IntOrString) (int, error) {
	if p.Type == intstr.Int {
		return p.IntValue(), nil
	}
	for _, cp := range t.c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("container %q has no port named %q", t.c.Name, p.StrVal)
}

var probeTransport = &http.Transport{
	TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes do not verify certificates, as the kubelet's
	DisableKeepAlives: true,
}

func (t probeTarget) httpGet(ctx context.Context, g *corev1.HTTPGetAction) error {
	port, err := t.port(g.Port)
	if err != nil {
		return err
	}
	host := g.Host
	if host == "" {
		host = t.ip
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+net.JoinHostPort(host, strconv.Itoa(port))+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "devnode-probe")
	for _, h := range g.HTTPHeaders {
		req.Header.Set(h.Name, h.Value)
	}
	resp, err := (&http.Client{Transport: probeTransport}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10*1024))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
	}
	return nil
}

// exec runs argv inside the container: its mount and UTS namespaces, root and working
// directory, user and groups, environment.
func (t probeTarget) exec(ctx context.Context, argv []string) error {
	if len(argv) == 0 {
		return errors.New("exec probe has no command")
	}
	pid := strconv.Itoa(t.pid)
	args := []string{"--target", pid, "--mount", "--uts", "--pid", "--net", "--root", "--wd", "--"}
	if t.uid != 0 || t.gid != 0 || len(t.groups) > 0 {
		args = append(args, "setpriv", "--reuid", strconv.Itoa(int(t.uid)), "--regid", strconv.Itoa(int(t.gid)))
		if len(t.groups) > 0 {
			gs := make([]string, 0, len(t.groups))
			for _, g := range t.groups {
				gs = append(gs, strconv.Itoa(int(g)))
			}
			args = append(args, "--groups", strings.Join(gs, ","))
		} else {
			args = append(args, "--clear-groups")
		}
		args = append(args, "--")
	}
	args = append(args, argv...)
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return fmt.Errorf("exec probes need nsenter (util-linux): %w", err)
	}
	cmd := exec.CommandContext(ctx, nsenter, args...)
	cmd.Env = t.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second
	if err := t.spawner.start(cmd); err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 512 {
			msg = msg[len(msg)-512:]
		}
		if ctx.Err() != nil {
			return fmt.Errorf("command %q timed out", strings.Join(argv, " "))
		}
		return fmt.Errorf("command %q: %v: %s", strings.Join(argv, " "), err, msg)
	}
	return nil
}
