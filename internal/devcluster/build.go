package devcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ProjectBinaries are what Build compiles into the project bin directory, by package: the
// image's two binaries and the fake kernel the benchmarks run in the project image (see
// FakeKernelPath).
var ProjectBinaries = map[string]string{
	"elastic-jupyter": "./cmd/elastic-jupyter",
	"kernel-launcher": "./cmd/kernel-launcher",
	"fake-kernel":     "./cmd/fake-kernel",
}

// DevnodeBinary is the devnode executable Build also compiles into the bin directory. It runs
// on the host, beside the image, never in it.
const DevnodeBinary = "devnode"

// FakeKernelPath is where the devnodes' project image holds the fake kernel (cmd/fake-kernel):
// a kernelspec whose image is the project image can run it as
// [FakeKernelPath, "-f", "{connection_file}"]. The released image does not have it.
const FakeKernelPath = "/usr/local/bin/fake-kernel"

// Build compiles elastic-jupyter, kernel-launcher, fake-kernel and devnode (static) from the
// repository at root into dir, as `make build` does.
func Build(root, dir string) error {
	all := map[string]string{DevnodeBinary: "./cmd/devnode"}
	for name, pkg := range ProjectBinaries {
		all[name] = pkg
	}
	for name, pkg := range all {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, name), pkg)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
		}
	}
	return nil
}
