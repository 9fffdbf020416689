package devnode

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// setupRoot builds the container's root, then pivots into it. Its base is one of two:
//
//   - the host's root (an unmapped image, or one of Options.ImageMap): an overlay with the
//     host's root as lower layer, the host's other mounts bound in, and a mapped image's
//     files laid over it;
//   - the image's whole root filesystem (Options.ImageRoot): an overlay with RootDir as lower
//     layer and the mounts a container runtime gives (see mountRuntime); nothing else of the
//     host appears.
//
// Either way the upper layer is the run's private directory, so neither the host nor RootDir
// is ever written; then come a fresh /proc, the volumes, /etc/hosts and pivot_root.
func (s *helperSpec) setupRoot() error {
	lower := "/"
	if s.RootDir != "" {
		lower = s.RootDir
	}
	opts := "lowerdir=" + lower + ",upperdir=" + s.Upper + ",workdir=" + s.Work
	if err := syscall.Mount("overlay", s.Rootfs, "overlay", 0, opts); err != nil {
		return fmt.Errorf("mounting the root overlay (lower layer %s): %w", lower, err)
	}
	if s.RootDir != "" {
		if err := s.mountRuntime(); err != nil {
			return fmt.Errorf("setting up the root filesystem %s: %w", s.RootDir, err)
		}
	} else {
		submounts, err := hostSubmounts()
		if err != nil {
			return err
		}
		for _, m := range submounts {
			if err := bindInto(s.Rootfs, m, m, syscall.MS_REC, false); err != nil {
				return fmt.Errorf("binding the host mount %s: %w", m, err)
			}
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

// mountRuntime gives an image's own root what a container runtime mounts in it: /dev and
// /sys bound from the host, a fresh devpts instance at /dev/pts and a private tmpfs at
// /dev/shm, the host's /etc/resolv.conf (read-only: the host's file must not change), and a
// world-writable /tmp.
func (s *helperSpec) mountRuntime() error {
	for _, m := range []string{"/dev", "/sys"} {
		if err := bindInto(s.Rootfs, m, m, syscall.MS_REC, false); err != nil {
			return fmt.Errorf("binding the host's %s: %w", m, err)
		}
	}
	for _, m := range []struct {
		target, fstype, data string
		flags                uintptr
	}{
		{"/dev/pts", "devpts", "newinstance,ptmxmode=0666,mode=0620,gid=5", syscall.MS_NOSUID | syscall.MS_NOEXEC},
		{"/dev/shm", "tmpfs", "mode=1777,size=65536k", syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC},
	} {
		dir, err := resolveInRoot(s.Rootfs, m.target)
		if err != nil {
			return err
		}
		// The mount point is in the host's /dev: never create one there.
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			continue
		}
		if err := syscall.Mount(m.fstype, dir, m.fstype, m.flags, m.data); err != nil {
			return fmt.Errorf("mounting %s (%s): %w", m.target, m.fstype, err)
		}
	}
	if _, err := os.Stat("/etc/resolv.conf"); err == nil {
		if err := bindInto(s.Rootfs, "/etc/resolv.conf", "/etc/resolv.conf", 0, true); err != nil {
			return fmt.Errorf("mounting /etc/resolv.conf: %w", err)
		}
	}
	tmp, err := resolveInRoot(s.Rootfs, "/tmp")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o777); err != nil {
		return err
	}
	// A change of mode lands in the private upper layer: the lower layer keeps its own.
	if st, err := os.Stat(tmp); err != nil {
		return err
	} else if st.Mode()&(os.ModePerm|os.ModeSticky) != os.ModePerm|os.ModeSticky {
		if err := os.Chmod(tmp, os.ModePerm|os.ModeSticky); err != nil {
			return fmt.Errorf("making /tmp writable: %w", err)
		}
	}
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
