package testenv

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// process is a control-plane component started by this package.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

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

// start runs a cached binary with args; its output goes to Dir/NAME.log.
func (e *Env) start(name string, args ...string) (*process, error) {
	bin, err := Binary(name)
	if err != nil {
		return nil, err
	}
	out, err := logFile(e.Dir, name)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		_ = out.Close()
		close(p.done)
	}()
	e.procs = append(e.procs, p)
	return p, nil
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *process) stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.cmd.Process.Pid)
	}
}

// waitHealthy polls https://127.0.0.1:port/healthz until it answers 200, the process exits,
// or the timeout passes.
func (e *Env) waitHealthy(p *process, port int, timeout time.Duration) error {
	c := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, //nolint:gosec // local health check of a test process
	}
	url := "https://127.0.0.1:" + strconv.Itoa(port) + "/healthz"
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited early (%v); see %s", p.name, p.err, filepath.Join(e.Dir, p.name+".log"))
		default:
		}
		resp, err := c.Get(url)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not healthy after %s; see %s", p.name, timeout, filepath.Join(e.Dir, p.name+".log"))
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

func (e *Env) startScheduler() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	p, err := e.start("kube-scheduler",
		"--kubeconfig="+e.Kubeconfig,
		"--authentication-kubeconfig="+e.Kubeconfig,
		"--authorization-kubeconfig="+e.Kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--leader-elect=false",
	)
	if err != nil {
		return err
	}
	return e.waitHealthy(p, port, 60*time.Second)
}

func (e *Env) startControllerManager(controllers []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	api := e.Envtest.ControlPlane.GetAPIServer()
	caFile := filepath.Join(e.Dir, "apiserver-ca.crt")
	if err := os.WriteFile(caFile, api.SecureServing.CA, 0o600); err != nil {
		return fmt.Errorf("writing the API server CA: %w", err)
	}
	saKey := filepath.Join(api.CertDir, "sa-signer.key")
	if _, err := os.Stat(saKey); err != nil {
		return errors.New("envtest's service-account signing key is missing: " + err.Error())
	}
	list := ""
	for i, c := range controllers {
		if i > 0 {
			list += ","
		}
		list += c
	}
	p, err := e.start("kube-controller-manager",
		"--kubeconfig="+e.Kubeconfig,
		"--authentication-kubeconfig="+e.Kubeconfig,
		"--authorization-kubeconfig="+e.Kubeconfig,
		"--bind-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port),
		"--leader-elect=false",
		"--use-service-account-credentials=false",
		"--service-account-private-key-file="+saKey,
		"--root-ca-file="+caFile,
		"--controllers="+list,
		// Fast node lifecycle, so a node that reports Ready loses its not-ready taint at once.
		"--node-monitor-period=1s",
		"--node-monitor-grace-period=20s",
		"--concurrent-gc-syncs=5",
	)
	if err != nil {
		return err
	}
	return e.waitHealthy(p, port, 60*time.Second)
}
