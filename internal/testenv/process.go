package testenv

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/elastic-jupyter/elastic-jupyter/internal/process"
)

// logFile opens DIR/NAME.log for a component's output.
func logFile(dir, name string) (io.WriteCloser, error) {
	f, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("creating the log of %s: %w", name, err)
	}
	return f, nil
}

// deathWrapper writes a script that runs the cached binary NAME with a parent-death signal,
// so it dies with the test process even when that process never gets to call Stop.
func deathWrapper(dir, name string) (string, error) {
	bin, err := Binary(name)
	if err != nil {
		return "", err
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		return "", fmt.Errorf("setpriv (util-linux) is needed to tie %s to the test process: %w", name, err)
	}
	p := filepath.Join(dir, name+".sh")
	script := fmt.Sprintf("#!/bin/sh\nexec %s --pdeathsig KILL -- %s \"$@\"\n", setpriv, bin)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		return "", fmt.Errorf("writing the %s wrapper: %w", name, err)
	}
	return p, nil
}

// start runs a cached binary with args; its output goes to Dir/NAME.log, and it dies with
// the test process.
func (e *Env) start(name string, args ...string) (*process.Process, error) {
	bin, err := Binary(name)
	if err != nil {
		return nil, err
	}
	p, err := process.Start(process.Spec{Name: name, Path: bin, Args: args, Log: filepath.Join(e.Dir, name+".log")})
	if err != nil {
		return nil, err
	}
	e.procs = append(e.procs, p)
	return p, nil
}

// waitHealthy waits until https://127.0.0.1:port/healthz answers 200, failing early when
// the process exits.
func (e *Env) waitHealthy(p *process.Process, port int, timeout time.Duration) error {
	url := "https://127.0.0.1:" + strconv.Itoa(port) + "/healthz"
	//nolint:gosec // local health check of a test process, whose certificate is self-signed
	return process.WaitHTTP(context.Background(), p, url, &tls.Config{InsecureSkipVerify: true}, timeout)
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// writeKubeconfig provisions an admin user and writes its kubeconfig to Dir/kubeconfig.
func (e *Env) writeKubeconfig() error {
	user, err := e.Envtest.AddUser(envtest.User{Name: "testenv-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("provisioning the admin user: %w", err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("rendering the admin kubeconfig: %w", err)
	}
	e.Kubeconfig = filepath.Join(e.Dir, "kubeconfig")
	return os.WriteFile(e.Kubeconfig, data, 0o600)
}

// startComponent runs kube-scheduler or kube-controller-manager, NAME, with the admin
// kubeconfig, serving /healthz on a free port, and waits until it is healthy.
func (e *Env) startComponent(name string, args ...string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	p, err := e.start(name, append([]string{
		"--kubeconfig=" + e.Kubeconfig,
		"--authentication-kubeconfig=" + e.Kubeconfig,
		"--authorization-kubeconfig=" + e.Kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--leader-elect=false",
	}, args...)...)
	if err != nil {
		return err
	}
	return e.waitHealthy(p, port, 60*time.Second)
}

func (e *Env) startScheduler() error { return e.startComponent("kube-scheduler") }

func (e *Env) startControllerManager(controllers []string) error {
	api := e.Envtest.ControlPlane.GetAPIServer()
	caFile := filepath.Join(e.Dir, "apiserver-ca.crt")
	if err := os.WriteFile(caFile, api.SecureServing.CA, 0o600); err != nil {
		return fmt.Errorf("writing the API server CA: %w", err)
	}
	saKey := filepath.Join(api.CertDir, "sa-signer.key")
	if _, err := os.Stat(saKey); err != nil {
		return fmt.Errorf("envtest's service-account signing key is missing: %w", err)
	}
	return e.startComponent("kube-controller-manager",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file="+saKey,
		"--root-ca-file="+caFile,
		"--controllers="+strings.Join(controllers, ","),
		// Fast node lifecycle, so a node that reports Ready loses its not-ready taint at once.
		"--node-monitor-period=1s",
		"--node-monitor-grace-period=20s",
		"--concurrent-gc-syncs=5",
	)
}
