package devnode

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// helperArg is the first argument that turns an executable calling RunHelperIfRequested into
// the container helper.
const helperArg = "__devnode-container"

// The helper's pipes: it reads its spec from fd 3, reports a failure on fd 4 (which closes on
// a successful exec), and fd 5 is the read end of devnode's lifeline, a pipe whose write end
// only devnode holds: end of file there means devnode is gone.
const (
	helperSpecFD     = 3
	helperStatusFD   = 4
	helperLifelineFD = 5
	helperNetnsFD    = 6
)

// helperHello is the first thing a helper writes on its status pipe, so devnode can tell its
// helper from an executable that does not call RunHelperIfRequested.
const helperHello = "devnode-helper\n"

// helperSpec tells the helper how to set up one container and what to run.
type helperSpec struct {
	// Rootfs, Upper and Work are the overlay's mount point, upper and work directories.
	Rootfs, Upper, Work string
	// ImageDir is laid over the host's root when the image is mapped (Options.ImageMap).
	ImageDir string
	// RootDir is the image's whole root filesystem (Options.ImageRoot): the overlay's lower
	// layer in place of the host's root. ImageDir is then empty.
	RootDir string
	// Mounts are bind mounts into the container, in order.
	Mounts []helperMount
	// Hosts is the pod's hosts file, mounted at /etc/hosts.
	Hosts string
	// Hostname is the container's host name.
	Hostname string
	// Argv is the command and its arguments; Argv[0] is looked up in the PATH of Env
	// when it has no '/'.
	Argv []string
	// Env is the process environment.
	Env []string
	// WorkingDir is the working directory, created when missing.
	WorkingDir string
	// UID, GID and Groups are the credentials the command runs with.
	UID, GID uint32
	Groups   []uint32
	// NoNewPrivs sets PR_SET_NO_NEW_PRIVS (allowPrivilegeEscalation: false).
	NoNewPrivs bool
	// JoinNetns makes the helper join the network namespace open at helperNetnsFD (the
	// pod's) before anything else.
	JoinNetns bool

	// netns is the pod's network namespace, passed to the helper as helperNetnsFD; nil for
	// the host's (hostNetwork pods).
	netns *os.File
}

// helperMount is a bind mount of a host path at a path inside the container.
type helperMount struct {
	Source, Target string
	ReadOnly       bool
}

// helperFailure is what the helper reports when the container cannot start.
type helperFailure struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// RunHelperIfRequested turns this process into devnode's container helper when it was started
// as one, and never returns then. Every executable used as Options.HelperPath (the
// elastic-jupyter binary; a test binary running devnode in-process) must call it before
// anything else, e.g. first thing in TestMain.
func RunHelperIfRequested() {
	if len(os.Args) < 2 || os.Args[1] != helperArg {
		return
	}
	status := os.NewFile(helperStatusFD, "status")
	_, _ = status.WriteString(helperHello)
	fail := func(reason string, err error) {
		_ = json.NewEncoder(status).Encode(helperFailure{Reason: reason, Message: err.Error()})
		os.Exit(1)
	}
	spec := os.NewFile(helperSpecFD, "spec")
	var s helperSpec
	if err := json.NewDecoder(spec).Decode(&s); err != nil {
		fail("RunContainerError", fmt.Errorf("reading the container spec: %w", err))
	}
	_ = spec.Close()
	if s.JoinNetns {
		// Namespaces are per thread: this one joins the pod's network and is the one that
		// execs the command (run returns only on failure), so the command is in it too.
		runtime.LockOSThread()
		if err := unix.Setns(helperNetnsFD, unix.CLONE_NEWNET); err != nil {
			fail("RunContainerError", fmt.Errorf("joining the pod's network namespace: %w", err))
		}
		_ = syscall.Close(helperNetnsFD)
	}
	syscall.CloseOnExec(helperStatusFD)
	syscall.CloseOnExec(helperLifelineFD)
	if devnodeGone() {
		fail("RunContainerError", errors.New("devnode exited while the container was starting"))
	}
	reason, err := s.run()
	fail(reason, err)
}

// run sets the container up inside its new pid, mount and UTS namespaces (the helper is the
// pid namespace's init, and so is the command it execs: when it ends, the kernel kills every
// process left in the namespace) and execs its command; it returns only on failure.
func (s *helperSpec) run() (string, error) {
	if err := s.setupRoot(); err != nil {
		return "RunContainerError", err
	}
	if err := syscall.Sethostname([]byte(s.Hostname)); err != nil {
		return "RunContainerError", fmt.Errorf("setting the host name: %w", err)
	}
	if len(s.Argv) == 0 {
		return "CreateContainerError", errors.New("the container has no command")
	}
	path, err := lookPath(s.Argv[0], envValueOf(s.Env, "PATH"))
	if err != nil {
		return "CreateContainerError", err
	}
	wd := s.WorkingDir
	if wd == "" {
		wd = "/"
	}
	if err := os.MkdirAll(wd, 0o755); err != nil {
		return "CreateContainerError", fmt.Errorf("creating the working directory %s: %w", wd, err)
	}
	if err := s.dropPrivileges(); err != nil {
		return "RunContainerError", err
	}
	if err := os.Chdir(wd); err != nil {
		return "CreateContainerError", fmt.Errorf("changing to the working directory %s as uid %d: %w", wd, s.UID, err)
	}
	err = syscall.Exec(path, s.Argv, s.Env)
	return "CreateContainerError", fmt.Errorf("exec %q: %w", path, err)
}

// dropPrivileges switches to the container's user and groups, then restores the parent-death
// signal (a credential change clears it) and checks devnode is still there (its lifeline is
// not at end of file), so a devnode that died in between does not leave the container behind.
func (s *helperSpec) dropPrivileges() error {
	groups := make([]int, 0, len(s.Groups))
	for _, g := range s.Groups {
		groups = append(groups, int(g))
	}
	if err := syscall.Setgroups(groups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := syscall.Setgid(int(s.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w", s.GID, err)
	}
	if err := syscall.Setuid(int(s.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w", s.UID, err)
	}
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0); errno != 0 {
		return fmt.Errorf("setting the parent-death signal: %w", errno)
	}
	if devnodeGone() {
		return errors.New("devnode exited while the container was starting")
	}
	if s.NoNewPrivs {
		const prSetNoNewPrivs = 38
		if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0); errno != 0 {
			return fmt.Errorf("setting no_new_privs: %w", errno)
		}
	}
	return nil
}

// devnodeGone reports whether devnode's lifeline is at end of file (every copy of its write
// end closed: devnode died).
func devnodeGone() bool {
	if err := syscall.SetNonblock(helperLifelineFD, true); err != nil {
		return false
	}
	var b [1]byte
	n, err := syscall.Read(helperLifelineFD, b[:])
	return n == 0 && err == nil
}

// lookPath finds the executable name in path (a PATH value) when it has no '/'.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, checkExecutable(name)
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH (%s)", name, path)
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("exec: %q: no such file or directory", p)
		}
		return fmt.Errorf("exec: %q: %w", p, err)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return fmt.Errorf("exec: %q: permission denied (not an executable file)", p)
	}
	return nil
}

func envValueOf(env []string, name string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], name+"="); ok {
			return v
		}
	}
	return ""
}

// readHelperFailure reads what a helper reported on its status pipe: nil when it greeted and
// then closed the pipe without another word (the command was exec'd).
func readHelperFailure(r io.Reader, helperPath string) (*helperFailure, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	rest, ok := strings.CutPrefix(string(data), helperHello)
	if !ok {
		return &helperFailure{Reason: "RunContainerError", Message: fmt.Sprintf(
			"%s did not run as devnode's container helper: the executable devnode starts (Options.HelperPath) must call devnode.RunHelperIfRequested first, in main or TestMain", helperPath)}, nil
	}
	if strings.TrimSpace(rest) == "" {
		return nil, nil
	}
	var f helperFailure
	if err := json.Unmarshal([]byte(rest), &f); err != nil {
		return &helperFailure{Reason: "RunContainerError", Message: "the container helper failed: " + strings.TrimSpace(rest)}, nil
	}
	return &f, nil
}
