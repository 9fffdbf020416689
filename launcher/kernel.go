package launcher

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// kernel supervises the kernel process: start, signal, stop, restart.
type kernel struct {
	argv []string
	env  []string
	dir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current process exits
	status  int           // exit status of the last process
	exited  chan int      // receives the status of a process that exited on its own
	stopped bool          // the current process is being stopped on purpose
}

func newKernel(argv []string) *kernel {
	wd, _ := os.Getwd()
	return &kernel{argv: argv, env: os.Environ(), dir: wd, exited: make(chan int, 1)}
}

// start runs argv in its own process group.
func (k *kernel) start() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	cmd := exec.Command(k.argv[0], k.argv[1:]...)
	cmd.Env, cmd.Dir = k.env, k.dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the kernel %q: %w", k.argv[0], err)
	}
	done := make(chan struct{})
	k.cmd, k.done, k.stopped = cmd, done, false
	go func() {
		err := cmd.Wait()
		status := exitStatus(cmd, err)
		k.mu.Lock()
		k.status = status
		onPurpose := k.stopped && k.cmd == cmd
		k.mu.Unlock()
		close(done)
		if !onPurpose {
			select {
			case k.exited <- status:
			default:
			}
		}
	}()
	return nil
}

// exitStatus is the shell's view of how a process ended: its code, or 128+signal.
func exitStatus(cmd *exec.Cmd, err error) int {
	if cmd.ProcessState == nil {
		return 1
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) || err == nil {
		return cmd.ProcessState.ExitCode()
	}
	return 1
}

// signal sends sig to the kernel's process group.
func (k *kernel) signal(sig syscall.Signal) error {
	k.mu.Lock()
	cmd := k.cmd
	k.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return errors.New("the kernel is not running")
	}
	return syscall.Kill(-cmd.Process.Pid, sig)
}

// stop ends the current process on purpose: SIGTERM to its group, SIGKILL after grace.
func (k *kernel) stop(grace time.Duration) {
	k.mu.Lock()
	cmd, done := k.cmd, k.done
	k.stopped = true
	k.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-done
}

// listening reports whether something accepts TCP connections on each port of ip.
func listening(ip string, ports ...int) bool {
	if ip == "" || ip == "0.0.0.0" || ip == "*" {
		ip = "127.0.0.1"
	}
	for _, p := range ports {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strconv.Itoa(p)), 500*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
	}
	return true
}
