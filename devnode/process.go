package devnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// spawner starts every child process from one OS thread that stays locked for the agent's
// life. A child's parent-death signal is tied to the thread that forked it, so children get
// SIGKILL when devnode dies, never because the Go runtime retired some thread while they run
// (the agent stops its containers itself before it stops the spawner).
type spawner struct {
	mu      sync.Mutex
	closed  bool
	reqs    chan spawnReq
	stopped chan struct{}
	// lifeline is the read end of a pipe whose write end only this process holds: helpers
	// see end of file there once devnode is gone.
	lifeline, lifelineW *os.File
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newSpawner() (*spawner, error) {
	s := &spawner{reqs: make(chan spawnReq), stopped: make(chan struct{})}
	var err error
	if s.lifeline, s.lifelineW, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("creating the lifeline pipe: %w", err)
	}
	go func() {
		// Locked while the spawner lives, so no other goroutine can run on (and retire) the
		// thread the containers hang on. Unlocked, not abandoned, at the end: a thread that
		// exits sends the parent-death signal to every child it ever forked, including
		// processes other code started from it before this goroutine took it over.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		defer close(s.stopped)
		for r := range s.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	return s, nil
}

// start starts cmd on the spawner's thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("devnode is stopping")
	}
	done := make(chan error, 1)
	s.reqs <- spawnReq{cmd: cmd, done: done}
	s.mu.Unlock()
	return <-done
}

// stop ends the spawner; its thread goes back to the runtime.
func (s *spawner) stop() {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.reqs)
	}
	s.mu.Unlock()
	<-s.stopped
	_ = s.lifelineW.Close()
	_ = s.lifeline.Close()
}

// proc is one run of a container: the helper that became the container's command, the leader
// of its own process group, the init of its own pid namespace and the first process of its own
// mount namespace.
type proc struct {
	cmd       *exec.Cmd
	pid       int
	startedAt time.Time
	done      chan struct{}
	exitCode  int32
	signal    syscall.Signal
}

// startProc starts the helper with spec, its output appended to logPath. A container that
// could not start is reported as a *helperFailure; an error is devnode's own failure.
func startProc(sp *spawner, helperPath string, spec *helperSpec, logPath string) (*proc, *helperFailure, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND|syscall.O_CLOEXEC, 0o640)
	if err != nil {
		return nil, nil, fmt.Errorf("opening the container log: %w", err)
	}
	defer logf.Close()
	specR, specW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer specR.Close()
	defer specW.Close()
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer statusR.Close()
	defer statusW.Close()

	cmd := exec.Command(helperPath, helperArg)
	cmd.Env = []string{}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{specR, statusW, sp.lifeline}
	if spec.netns != nil {
		cmd.ExtraFiles = append(cmd.ExtraFiles, spec.netns) // helperNetnsFD
		spec.JoinNetns = true
	}
	// In a new pid namespace the child's getppid() is 0, so the runtime's "is my parent
	// already dead" check right after fork misfires: the SIGKILL it then sends to itself
	// (pid 1, from inside its namespace) is ignored by the kernel. The helper checks the
	// lifeline instead.
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:      true,
		Pdeathsig:    syscall.SIGKILL,
		Cloneflags:   syscall.CLONE_NEWPID,
		Unshareflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
	}
	if err := sp.start(cmd); err != nil {
		return nil, nil, fmt.Errorf("starting the container helper %s: %w", helperPath, err)
	}
	_ = specR.Close()
	_ = statusW.Close()
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, startedAt: time.Now(), done: make(chan struct{})}
	writeErr := make(chan error, 1)
	go func() {
		err := json.NewEncoder(specW).Encode(spec)
		_ = specW.Close()
		writeErr <- err
	}()
	_ = statusR.SetReadDeadline(time.Now().Add(time.Minute))
	failure, readErr := readHelperFailure(statusR, helperPath)
	if err := <-writeErr; err != nil && failure == nil && readErr == nil {
		readErr = fmt.Errorf("sending the container spec: %w", err)
	}
	if failure != nil || readErr != nil {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if readErr != nil {
			return nil, nil, fmt.Errorf("waiting for the container helper: %w", readErr)
		}
		return nil, failure, nil
	}
	go p.wait()
	return p, nil, nil
}

// wait reaps the process. It is its pid namespace's init, so the kernel has killed whatever
// it left in the namespace by then.
func (p *proc) wait() {
	err := p.cmd.Wait()
	p.exitCode = 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.signal = ws.Signal()
			p.exitCode = 128 + int32(ws.Signal())
		} else {
			p.exitCode = int32(ee.ExitCode())
		}
	} else if err != nil {
		p.exitCode = 128
	}
	close(p.done)
}

// signalGroup sends sig to the process group.
func (p *proc) signalGroup(sig syscall.Signal) { _ = syscall.Kill(-p.pid, sig) }

// stop sends SIGTERM to the process group and, after grace, SIGKILL; it returns once the
// process is reaped.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	if grace > 0 {
		p.signalGroup(syscall.SIGTERM)
		t := time.NewTimer(grace)
		select {
		case <-p.done:
			t.Stop()
			return
		case <-t.C:
		}
	}
	p.signalGroup(syscall.SIGKILL) // the group's leader is the namespace's init: all go
	<-p.done
}

// processesIn returns the pids whose mount namespace matches.
func processesIn(match func(pid int, mntNS string) bool) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		ns, err := os.Readlink("/proc/" + e.Name() + "/ns/mnt")
		if err != nil {
			continue
		}
		if match(pid, ns) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ContainerProcesses returns the processes running in the containers of a devnode whose
// root directory is root, by container run directory (<pod dir>/containers/<name>/<n>). A
// process belongs to a container when its mount namespace's root is the overlay devnode
// mounted for it; that survives devnode restarts and processes that left their process group.
func ContainerProcesses(root string) map[string][]int {
	podsDir := strings.TrimSuffix(root, "/") + "/" + podsDirName + "/"
	selfNS, _ := os.Readlink("/proc/self/ns/mnt")
	owner := map[string]string{} // mount namespace -> run directory ("" when not ours)
	out := map[string][]int{}
	processesIn(func(pid int, ns string) bool {
		if ns == selfNS {
			return false
		}
		dir, seen := owner[ns]
		if !seen {
			dir = overlayRunDir(pid, podsDir)
			owner[ns] = dir
		}
		if dir != "" {
			out[dir] = append(out[dir], pid)
		}
		return false
	})
	return out
}

// overlayRunDir reads a process's mount table and returns the container run directory whose
// upper directory backs its root, if it lies under podsDir.
func overlayRunDir(pid int, podsDir string) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/mountinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 || fields[4] != "/" {
			continue
		}
		_, super, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		for _, opt := range strings.Split(super, ",") {
			upper, ok := strings.CutPrefix(strings.TrimSpace(opt), "upperdir=")
			if !ok {
				continue
			}
			upper = unescapeMountinfo(upper)
			if strings.HasPrefix(upper, podsDir) && strings.HasSuffix(upper, "/"+upperDirName) {
				return strings.TrimSuffix(upper, "/"+upperDirName)
			}
		}
	}
	return ""
}
