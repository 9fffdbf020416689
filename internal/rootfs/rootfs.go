// Package rootfs finds the JupyterLab 4 root filesystem (Debian 13 trixie with JupyterLab 4,
// Jupyter Server 2.x, ipykernel, numpy, dill) that hack/rootfs.sh builds into the cache, and
// has the script build it. devnode runs the stock Jupyter image from it (--image-root) in
// `make up` and the tests.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Name is the rootfs's directory under <cache>/rootfs.
const Name = "jupyterlab-trixie"

// marker is the file hack/rootfs.sh writes last, holding the rootfs's version: a directory
// without it is not a finished build.
const marker = ".elastic-jupyter-rootfs"

// Dir is where hack/rootfs.sh builds the rootfs (what `hack/rootfs.sh --path` prints):
// $ELASTIC_JUPYTER_CACHE/rootfs/jupyterlab-trixie, the cache defaulting to
// ~/.cache/elastic-jupyter.
func Dir() string {
	cache := os.Getenv("ELASTIC_JUPYTER_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.Getenv("HOME")
		}
		cache = filepath.Join(home, ".cache", "elastic-jupyter")
	}
	return filepath.Join(cache, "rootfs", Name)
}

// Check reports whether dir holds a finished rootfs; the error says how to build one.
func Check(dir string) error {
	if _, err := os.Stat(filepath.Join(dir, marker)); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("the JupyterLab root filesystem is not built in %s: run hack/rootfs.sh (make rootfs; as root, with debootstrap from hack/deps.sh; a few minutes, once)", dir)
		}
		return fmt.Errorf("the JupyterLab root filesystem in %s: %w", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "usr", "bin", "python3")); err != nil {
		return fmt.Errorf("the JupyterLab root filesystem in %s has no usr/bin/python3: rebuild it with hack/rootfs.sh (%w)", dir, err)
	}
	return nil
}

// Ensure runs hack/rootfs.sh of the repository at repoRoot, which builds the rootfs when it
// is missing or out of date (as root; minutes the first time) and returns at once otherwise,
// then returns Dir. Tests call it so that they never skip for want of the rootfs.
func Ensure(repoRoot string) (string, error) {
	script := filepath.Join(repoRoot, "hack", "rootfs.sh")
	out, err := exec.Command("bash", script).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building the JupyterLab root filesystem with %s: %w\n%s", script, err, strings.TrimSpace(string(out)))
	}
	dir := Dir()
	if err := Check(dir); err != nil {
		return "", fmt.Errorf("%s ran but: %w", script, err)
	}
	return dir, nil
}
