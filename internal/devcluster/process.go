package devcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/internal/process"
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
	pids := filepath.Join(cl.cfg.Dir, "pids")
	if err := os.MkdirAll(pids, 0o755); err != nil {
		return fmt.Errorf("starting %s: %w", c.name, err)
	}
	log := filepath.Join("logs", c.name+".log")
	p, err := process.Start(process.Spec{
		Name: c.name, Path: c.path, Args: c.args, Env: c.env, Dir: cl.cfg.Dir,
		Log: filepath.Join(cl.cfg.Dir, log), Detached: !cl.cfg.Attached,
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(pids, c.name+".pid"), []byte(strconv.Itoa(p.Pid())), 0o644); err != nil {
		return fmt.Errorf("recording the pid of %s: %w", c.name, err)
	}
	cl.procs = append(cl.procs, &proc{Process: p, name: c.name, pid: p.Pid()})
	fmt.Fprintf(cl.out, "up: started %s (pid %d, log %s)\n", c.name, p.Pid(), log)
	return nil
}

// proc is a started process.
type proc struct {
	*process.Process
	name string
	pid  int
}

// exited reports whether the process has ended.
func (p *proc) exited() bool { return p.Exited() }

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
func alive(pid int) bool { return process.Alive(pid) }

// stopPidFiles stops every process recorded in Dir/pids (in the order of names given),
// SIGTERM to its process group, SIGKILL after grace, and removes the pid files.
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
			if err := process.Terminate(context.Background(), pid, grace); err != nil {
				errs = append(errs, fmt.Errorf("stopping %s: %w", name, err))
				continue
			}
		}
		_ = os.Remove(file)
	}
	return errors.Join(errs...)
}

// portFree reports whether addr (host:port) can be listened on.
func portFree(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return l.Close()
}
