package launcher

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// BinaryName is the launcher's file name in the install directory.
const BinaryName = "kernel-launcher"

// Install copies the running executable to dir/kernel-launcher (mode 0755), for the init
// container that puts the launcher into the kernel's pod.
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
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	dst := filepath.Join(dir, BinaryName)
	tmp, err := os.CreateTemp(dir, ".kernel-launcher-*")
	if err != nil {
		return "", fmt.Errorf("creating a file in %s: %w", dir, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, src); err != nil {
		tmp.Close()
		return "", fmt.Errorf("copying the launcher: %w", err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return "", fmt.Errorf("installing %s: %w", dst, err)
	}
	return dst, nil
}
