package devnode

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
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
)

// helperHello is the first thing a helper writes on its status pipe, so devnode can tell its
// helper from an executable that does not call RunHelperIfRequested.
const helperHello = "devnode-helper\n"

// helperSpec tells the helper how to set up one container and what to run.
type helperSpec struct {
	// Rootfs, Upper and Work are the overlay's mount point, upper and work directories.
	Rootfs, Upper, Work string
	// ImageDir is laid over the root filesystem when the image is mapped.
	ImageDir string
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
	syscall.CloseOnExec(helperStatusFD)
	syscall.CloseOnExec(helperLifelineFD)
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

// setupRoot builds the container's root: an overlay of the host's root with a private upper
// directory, the host's other mounts bound in, the mapped image's files laid over it, the
// volumes and /etc/hosts mounted, then pivot_root into it.
func (s *helperSpec) setupRoot() error {
	opts := "lowerdir=/,upperdir=" + s.Upper + ",workdir=" + s.Work
	if err := syscall.Mount("overlay", s.Rootfs, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting the root overlay: %w", err)
	}
	submounts, err := hostSubmounts()
	if err != nil {
		return err
	}
	for _, m := range submounts {
		if err := bindInto(s.Rootfs, m, m, syscall.MS_REC, false); err != nil {
			return fmt.Errorf("binding the host mount %s: %w", m, err)
		}
	}
	procDir, err := resolveInRoot(s.Rootfs, "/proc")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(procDir, 0o555); err != nil {
		return err
	}
	if err := syscall.Mount("proc", procDir, "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc of the container's pid namespace: %w", err)
	}
	if s.ImageDir != "" {
		if err := layImage(s.Rootfs, s.ImageDir, "/"); err != nil {
			return fmt.Errorf("laying the image directory %s over the root: %w", s.ImageDir, err)
		}
	}
	for _, m := range s.Mounts {
		if err := bindInto(s.Rootfs, m.Source, m.Target, 0, m.ReadOnly); err != nil {
			return fmt.Errorf("mounting %s: %w", m.Target, err)
		}
	}
	if s.Hosts != "" {
		if err := bindInto(s.Rootfs, s.Hosts, "/etc/hosts", 0, false); err != nil {
			return fmt.Errorf("mounting /etc/hosts: %w", err)
		}
	}
	old := filepath.Join(s.Rootfs, ".devnode-oldroot")
	if err := os.MkdirAll(old, 0o700); err != nil {
		return err
	}
	if err := syscall.PivotRoot(s.Rootfs, old); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := os.Chdir("/"); err != nil {
		return err
	}
	if err := syscall.Unmount("/.devnode-oldroot", syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	_ = os.Remove("/.devnode-oldroot")
	return nil
}

// hostSubmounts returns the top-level mount points of this namespace other than "/" and /proc
// (so /sys, /dev and friends appear in the container), shortest first.
func hostSubmounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		// "/" is the overlay's lower layer; /proc is mounted afresh for the pid namespace
		if p := unescapeMountinfo(fields[4]); p != "/" && p != "/proc" && !strings.HasPrefix(p, "/proc/") {
			points = append(points, p)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	sort.Slice(points, func(i, j int) bool {
		return len(points[i]) < len(points[j]) || (len(points[i]) == len(points[j]) && points[i] < points[j])
	})
	var top []string
	for _, p := range points {
		covered := false
		for _, t := range top {
			if p == t || strings.HasPrefix(p, t+"/") {
				covered = true
				break
			}
		}
		if !covered {
			top = append(top, p)
		}
	}
	return top, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for space, ...) of /proc/*/mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v byte
			ok := true
			for _, c := range []byte(s[i+1 : i+4]) {
				if c < '0' || c > '7' {
					ok = false
					break
				}
				v = v*8 + (c - '0')
			}
			if ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// layImage binds the image directory's entries over the root: an entry the host root lacks
// (or a file) is bound whole; a directory both have is entered, so the image's files join the
// host's (DIR/usr/local/bin/x appears at /usr/local/bin/x next to the host's files).
func layImage(rootfs, imageDir, rel string) error {
	entries, err := os.ReadDir(filepath.Join(imageDir, rel))
	if err != nil {
		return err
	}
	for _, e := range entries {
		r := filepath.Join(rel, e.Name())
		src := filepath.Join(imageDir, r)
		st, err := os.Stat(src)
		if err != nil {
			return err
		}
		if st.IsDir() {
			target, err := resolveInRoot(rootfs, r)
			if err != nil {
				return err
			}
			if tst, err := os.Stat(target); err == nil && tst.IsDir() {
				if err := layImage(rootfs, imageDir, r); err != nil {
					return err
				}
				continue
			}
		}
		if err := bindInto(rootfs, src, r, syscall.MS_REC, false); err != nil {
			return fmt.Errorf("binding %s: %w", r, err)
		}
	}
	return nil
}

// bindInto bind-mounts source at target inside rootfs, creating the mount point (a directory
// or an empty file, like source) in the root's private upper layer.
func bindInto(rootfs, source, target string, extra uintptr, readOnly bool) error {
	st, err := os.Stat(source)
	if err != nil {
		return err
	}
	dst, err := resolveInRoot(rootfs, target)
	if err != nil {
		return err
	}
	if st.IsDir() {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return err
		}
	} else {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		f, err := os.OpenFile(dst, os.O_CREATE|os.O_RDONLY, 0o644)
		if err != nil {
			return err
		}
		_ = f.Close()
	}
	if err := syscall.Mount(source, dst, "", syscall.MS_BIND|extra, ""); err != nil {
		return err
	}
	if readOnly {
		return syscall.Mount("", dst, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|extra, "")
	}
	return nil
}

// resolveInRoot returns the host path of path inside root, following symbolic links as if
// root were "/" (so /var/run -> /run resolves to root/run, never outside root).
func resolveInRoot(root, path string) (string, error) {
	const maxLinks = 64
	links := 0
	resolved := ""
	rest := strings.Split(filepath.Clean("/"+path), "/")
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			if resolved == "." || resolved == "/" {
				resolved = ""
			}
			continue
		}
		next := resolved + "/" + c
		fi, err := os.Lstat(root + next)
		if err != nil || fi.Mode()&os.ModeSymlink == 0 {
			resolved = next
			continue
		}
		links++
		if links > maxLinks {
			return "", fmt.Errorf("too many symbolic links under %s", path)
		}
		dest, err := os.Readlink(root + next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(dest) {
			resolved = ""
		}
		rest = append(strings.Split(dest, "/"), rest...)
	}
	return root + resolved, nil
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
	if err := syscall.SetNonblock(helperLifelineFD, true); err != nil {
		return fmt.Errorf("checking on devnode: %w", err)
	}
	var b [1]byte
	if n, err := syscall.Read(helperLifelineFD, b[:]); n == 0 && err == nil {
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
