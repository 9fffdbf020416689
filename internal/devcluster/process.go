package devcluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// component is one process of the local cluster.
type component struct {
	name string
	path string
	args []string
	env  []string
}

// start runs c in the background with its output in Dir/logs/NAME.log and its pid in
// Dir/pids/NAME.pid. Detached processes get a session of their own and outlive `make up`;
// attached ones (tests) die with the process that started them.
func (cl *Cluster) start(c component) error {
	logs := filepath.Join(cl.cfg.Dir, "logs")
	pids := filepath.Join(cl.cfg.Dir, "pids")
	for _, d := range []string{logs, pids} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	out, err := os.OpenFile(filepath.Join(logs, c.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(c.path, c.args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Dir = cl.cfg.Dir
	if cl.cfg.Attached {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	} else {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", c.name, err)
	}
	if err := os.WriteFile(filepath.Join(pids, c.name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	cl.procs = append(cl.procs, &proc{name: c.name, pid: cmd.Process.Pid, done: done})
	fmt.Fprintf(cl.out, "up: started %s (pid %d, log %s)\n", c.name, cmd.Process.Pid, filepath.Join("logs", c.name+".log"))
	return nil
}

// proc is a started process.
type proc struct {
	name string
	pid  int
	done chan struct{}
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ours reports whether pid runs a process this cluster started: its working directory is Dir.
// A pid reused by an unrelated process is left alone.
func ours(pid int, dir string) bool {
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if err != nil {
		return false
	}
	abs, _ := filepath.Abs(dir)
	return cwd == abs
}

// alive reports whether pid runs and is not a zombie.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// stopPidFiles stops every process recorded in Dir/pids (in reverse start order of names
// given), SIGTERM to its process group, SIGKILL after grace, and removes the pid files.
func stopPidFiles(dir string, order []string, grace time.Duration) error {
	var errs []error
	for _, name := range order {
		file := filepath.Join(dir, "pids", name+".pid")
		data, err := os.ReadFile(file)
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err == nil && alive(pid) && ours(pid, dir) {
			if err := terminate(pid, grace); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
		}
		_ = os.Remove(file)
	}
	return errors.Join(errs...)
}

// terminate ends a process group leader and its group.
func terminate(pid int, grace time.Duration) error {
	pgid, err := syscall.Getpgid(pid)
	if err != nil || pgid != pid {
		pgid = 0
	}
	kill := func(sig syscall.Signal) {
		if pgid != 0 {
			_ = syscall.Kill(-pgid, sig)
		}
		_ = syscall.Kill(pid, sig)
	}
	kill(syscall.SIGTERM)
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	kill(syscall.SIGKILL)
	for i := 0; i < 50; i++ {
		if !alive(pid) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("pid %d survived SIGKILL", pid)
}

// portFree reports whether addr (host:port) can be listened on.
func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}
