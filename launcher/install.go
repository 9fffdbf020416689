package launcher

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// BinaryName is the launcher's file name in the install directory.
const BinaryName = "kernel-launcher"

// Install copies the running executable to dir/kernel-launcher (mode 0755) and writes the
// kernel-state helper to StateHelperInstallPath(dir) (mode 0644), each atomically, for the init
// container that puts the launcher into the kernel's pod. It returns the binary's path.
func Install(dir string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the launcher's own executable: %w", err)
	}
	src, err := os.Open(self)
	if err != nil {
		return "", fmt.Errorf("opening %s: %w", self, err)
	}
	defer src.Close()
	dst := filepath.Join(dir, BinaryName)
	if err := writeAtomic(dst, src, 0o755); err != nil {
		return "", fmt.Errorf("installing the launcher: %w", err)
	}
	if err := writeAtomic(StateHelperInstallPath(dir), bytes.NewReader(stateHelper), 0o644); err != nil {
		return "", fmt.Errorf("installing the kernel-state helper: %w", err)
	}
	return dst, nil
}

// writeAtomic writes r to path through a temp file in the same directory (created if missing)
// and a rename, so a reader never sees a partial file.
func writeAtomic(path string, r io.Reader, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("creating a file in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("setting the mode of %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("renaming to %s: %w", path, err)
	}
	return nil
}
