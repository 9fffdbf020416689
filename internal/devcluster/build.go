package devcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Build compiles elastic-jupyter and kernel-launcher (static) from the repository at root into
// dir, as `make build` does.
func Build(root, dir string) error {
	for name, pkg := range map[string]string{"elastic-jupyter": "./cmd/elastic-jupyter", "kernel-launcher": "./cmd/kernel-launcher"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	return nil
}
