// Package kerneltest starts real Jupyter kernels (Debian's ipykernel under /usr/bin/python3)
// for tests, each in its own process group, killed when the test ends or the test process dies.
package kerneltest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/elastic-jupyter/elastic-jupyter/internal/process"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// Python is Debian's interpreter, which has ipykernel (the python3 first on PATH may not).
const Python = "/usr/bin/python3"

// IPyKernelArgv is the kernelspec argv of Debian's ipykernel.
var IPyKernelArgv = []string{Python, "-m", "ipykernel_launcher", "-f", "{connection_file}"}

// FreePorts returns n distinct free TCP ports on ip.
func FreePorts(ip string, n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			return nil, fmt.Errorf("finding a free port on %s: %w", ip, err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// NewKey returns a random hex key.
func NewKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewConnectionInfo returns connection info on 127.0.0.1 with free ports and a random key.
func NewConnectionInfo(t testing.TB) *jupyter.ConnectionInfo {
	t.Helper()
	ports, err := FreePorts("127.0.0.1", 5)
	if err != nil {
		t.Fatal(err)
	}
	return &jupyter.ConnectionInfo{
		IP: "127.0.0.1", Transport: "tcp",
		ShellPort: ports[0], IOPubPort: ports[1], StdinPort: ports[2], ControlPort: ports[3], HBPort: ports[4],
		Key: NewKey(), SignatureScheme: jupyter.SignatureScheme, KernelName: "python3",
	}
}

// Kernel is a running ipykernel.
type Kernel struct {
	// Info is its connection info.
	Info *jupyter.ConnectionInfo
	// Process is its process (Done, Kill, Pid).
	*process.Process
	// Dir is its private directory (connection file, HOME).
	Dir string
}

// Env returns a minimal environment for a kernel whose HOME is dir.
func Env(dir string) []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + dir,
		"IPYTHONDIR=" + filepath.Join(dir, ".ipython"),
		"JUPYTER_RUNTIME_DIR=" + filepath.Join(dir, "runtime"),
		"PYTHONUNBUFFERED=1",
		"LANG=C.UTF-8",
	}
}

// StartIPyKernel starts an ipykernel with ci (NewConnectionInfo when nil) and stops it when the
// test ends.
func StartIPyKernel(t testing.TB, ci *jupyter.ConnectionInfo) *Kernel {
	t.Helper()
	if ci == nil {
		ci = NewConnectionInfo(t)
	}
	dir := t.TempDir()
	data, err := ci.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "kernel.json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(Python, "-m", "ipykernel_launcher", "-f", file)
	cmd.Dir = dir
	cmd.Env = Env(dir)
	cmd.Stdout, cmd.Stderr = testWriter{t}, testWriter{t}
	p, err := process.StartCmd("ipykernel", cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return &Kernel{Info: ci, Process: p, Dir: dir}
}

// testWriter sends a process's output to the test log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // the test may have ended
	w.t.Logf("%s", p)
	return len(p), nil
}
