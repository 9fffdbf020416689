// Package process starts, stops and waits for the child processes of the test control plane
// (internal/testenv) and of the local cluster `make up` runs (internal/devcluster): each
// runs in a process group of its own with its output in a log file, is stopped with SIGTERM
// to its group and SIGKILL after a grace period, and is waited for until it answers HTTP.
package process

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Spec says what to run and how.
type Spec struct {
	// Name names the process in errors.
	Name string
	// Path and Args are the program and its arguments.
	Path string
	Args []string
	// Env is added to this process's environment.
	Env []string
	// Dir is the working directory (default: this process's).
	Dir string
	// Log is the file stdout and stderr are appended to (created if missing).
	Log string
	// Detached gives the process a session of its own, so that it outlives the caller.
	// Otherwise it gets a process group of its own and is killed when the caller dies
	// (parent-death signal), even without a Stop.
	Detached bool
}

// Process is a started child process.
type Process struct {
	// Name and Log are the Spec's (Log is empty for StartCmd's).
	Name, Log string
	cmd       *exec.Cmd
	done      chan struct{}
	err       error
}

// Start starts s.
func Start(s Spec) (*Process, error) {
	if s.Log == "" {
		return nil, fmt.Errorf("starting %s: no log file given", s.Name)
	}
	if err := os.MkdirAll(filepath.Dir(s.Log), 0o755); err != nil {
		return nil, fmt.Errorf("starting %s: creating the log directory: %w", s.Name, err)
	}
	out, err := os.OpenFile(s.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("starting %s: opening its log: %w", s.Name, err)
	}
	cmd := exec.Command(s.Path, s.Args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Dir = s.Dir
	if len(s.Env) > 0 {
		cmd.Env = append(os.Environ(), s.Env...)
	}
	p, err := start(s.Name, cmd, s.Detached, out)
	if err != nil {
		return nil, err
	}
	p.Log = s.Log
	return p, nil
}

// StartCmd starts cmd, whose output, environment and credentials the caller set, as Start
// starts an attached process: in a process group of its own, killed when the caller dies.
// Tests start their servers and kernels with it, and kill them with Kill when they end.
func StartCmd(name string, cmd *exec.Cmd) (*Process, error) {
	return start(name, cmd, false, nil)
}

// start starts cmd in a group (or, detached, a session) of its own; closer, if set, is closed
// once the process has exited.
func start(name string, cmd *exec.Cmd, detached bool, closer io.Closer) (*Process, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if detached {
		cmd.SysProcAttr.Setsid = true
	} else {
		cmd.SysProcAttr.Setpgid, cmd.SysProcAttr.Pdeathsig = true, syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		if closer != nil {
			_ = closer.Close()
		}
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		if closer != nil {
			_ = closer.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id (and process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is how the process exited (exec.Cmd.Wait's error), once Done is closed.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// ExitCode is the process's exit code once Done is closed (-1 when a signal ended it), and
// -1 before.
func (p *Process) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Kill sends SIGKILL to the process group and waits until the process has exited.
func (p *Process) Kill() {
	signalGroup(p.Pid(), syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(killWait):
	}
}

// Stop sends SIGTERM to the process group, and SIGKILL if the process has not exited after
// grace; it returns once the process has exited.
func (p *Process) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	signalGroup(p.Pid(), syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	signalGroup(p.Pid(), syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(killWait):
		return fmt.Errorf("%s (pid %d) did not exit %s after SIGKILL", p.Name, p.Pid(), killWait)
	}
}

// killWait is how long a process may take to go after SIGKILL.
const killWait = 10 * time.Second

// Terminate stops pid, a process this one did not start (recorded in a pid file by an
// earlier run), as Stop does: SIGTERM to its group if it leads one, else to it alone, SIGKILL
// after grace.
func Terminate(ctx context.Context, pid int, grace time.Duration) error {
	signalGroup(pid, syscall.SIGTERM)
	if waitGone(ctx, pid, grace) == nil {
		return nil
	}
	signalGroup(pid, syscall.SIGKILL)
	if err := waitGone(ctx, pid, killWait); err != nil {
		return fmt.Errorf("pid %d still runs %s after SIGKILL: %w", pid, killWait, err)
	}
	return nil
}

// waitGone polls until pid no longer runs.
func waitGone(ctx context.Context, pid int, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		return !Alive(pid), nil
	})
}

// signalGroup sends sig to pid's process group if pid leads one, and to pid.
func signalGroup(pid int, sig syscall.Signal) {
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		_ = syscall.Kill(-pgid, sig)
	}
	_ = syscall.Kill(pid, sig)
}

// Alive reports whether pid runs and is not a zombie.
func Alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// WaitHTTP polls url until it answers 200 OK, failing early when p (if not nil) exits, or
// after timeout. tlsCfg is the client's TLS configuration (nil: the system's roots).
func WaitHTTP(ctx context.Context, p *Process, url string, tlsCfg *tls.Config, timeout time.Duration) error {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	defer c.CloseIdleConnections()
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		if p != nil && p.Exited() {
			return false, fmt.Errorf("%s exited (%v) before %s answered", p.Name, p.Err(), url)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, fmt.Errorf("waiting for %s: %w", url, err)
		}
		resp, err := c.Do(req)
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err == nil {
		return nil
	}
	name, log := url, ""
	if p != nil {
		name = p.Name
		if p.Log != "" {
			log = "; see " + p.Log
		}
	}
	if wait.Interrupted(err) {
		return fmt.Errorf("%s did not answer 200 at %s within %s%s: %w", name, url, timeout, log, err)
	}
	return fmt.Errorf("%w%s", err, log)
}
