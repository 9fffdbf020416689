package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// LocalProvisioner runs each kernel as a local process (its own process group, killed with the
// gateway), for workstations and fast tests. Suspending stops the process; resuming starts it
// again, fresh, as a pod would come back.
type LocalProvisioner struct {
	// RuntimeDir holds the connection files (mode 0600).
	RuntimeDir string
	// IP is the address kernels bind (default 127.0.0.1).
	IP string
	// Env is the base environment of kernels (default: the gateway's own).
	Env []string
	// Output receives the kernels' stdout and stderr (default: discarded).
	Output io.Writer
	// StopGrace is the time between SIGTERM and SIGKILL (default 5s).
	StopGrace time.Duration
	// StateDir, when set, keeps suspended kernels' variables (one snapshot file each); the
	// kernels need ipykernel.
	StateDir string
	// StateMaxBytes bounds a snapshot (0: no bound).
	StateMaxBytes int64

	mu      sync.Mutex
	kernels map[string]*localKernel
	state   localState
}

type localKernel struct {
	op   sync.Mutex // serializes operations on the kernel
	spec KernelSpec
	env  map[string]string
	info *jupyter.ConnectionInfo
	file string
	cmd  *exec.Cmd
	done chan struct{}
}

var _ Provisioner = (*LocalProvisioner)(nil)

func (p *LocalProvisioner) ip() string {
	if p.IP == "" {
		return "127.0.0.1"
	}
	return p.IP
}

// Start implements Provisioner: the process starts now; Wait tells when it listens.
func (p *LocalProvisioner) Start(_ context.Context, req StartRequest) error {
	lk := &localKernel{spec: req.Spec, env: req.Env}
	if err := p.spawn(req.ID, lk); err != nil {
		return err
	}
	p.mu.Lock()
	if p.kernels == nil {
		p.kernels = map[string]*localKernel{}
	}
	p.kernels[req.ID] = lk
	p.mu.Unlock()
	return nil
}

// Wait implements Provisioner: it waits until the kernel listens on its shell and heartbeat
// ports. A kernel that does not by the end of ctx is stopped.
func (p *LocalProvisioner) Wait(ctx context.Context, id string, _ func(string)) (*jupyter.ConnectionInfo, error) {
	lk, err := p.kernel(id)
	if err != nil {
		return nil, err
	}
	lk.op.Lock()
	info, done, cmd := lk.info, lk.done, lk.cmd
	lk.op.Unlock()
	if cmd == nil {
		return nil, errors.New("the kernel process is not running")
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !listens(info) {
		select {
		case <-done:
			return nil, fmt.Errorf("the kernel process exited before it listened (%s)", cmd.ProcessState)
		case <-ctx.Done():
			lk.op.Lock()
			if lk.cmd == cmd {
				p.stop(lk)
			}
			lk.op.Unlock()
			return nil, ctx.Err()
		case <-tick.C:
		}
	}
	return info, nil
}

// spawn writes a fresh connection file and starts the kernel process.
func (p *LocalProvisioner) spawn(id string, lk *localKernel) error {
	info, err := newConnectionInfo(p.ip())
	if err != nil {
		return err
	}
	info.KernelName = lk.spec.Name
	if err := os.MkdirAll(p.RuntimeDir, 0o700); err != nil {
		return fmt.Errorf("creating the runtime directory: %w", err)
	}
	data, err := info.Marshal()
	if err != nil {
		return err
	}
	file := filepath.Join(p.RuntimeDir, "kernel-"+id+".json")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		return fmt.Errorf("writing the connection file: %w", err)
	}
	argv := make([]string, len(lk.spec.Argv))
	for i, a := range lk.spec.Argv {
		argv[i] = strings.ReplaceAll(a, jupyter.ConnectionFilePlaceholder, file)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append([]string{}, p.baseEnv()...), envList(lk.spec.Env)...)
	cmd.Env = append(cmd.Env, envList(lk.env)...)
	cmd.Env = append(cmd.Env, "KERNEL_ID="+id)
	if wd := lk.env["KERNEL_WORKING_DIR"]; wd != "" {
		if st, err := os.Stat(wd); err == nil && st.IsDir() {
			cmd.Dir = wd
		}
	}
	out := p.Output
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = os.Remove(file)
		return fmt.Errorf("starting %q: %w", argv[0], err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	lk.info, lk.file, lk.cmd, lk.done = info, file, cmd, done
	return nil
}

func (p *LocalProvisioner) baseEnv() []string {
	if p.Env != nil {
		return p.Env
	}
	return os.Environ()
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

// stop ends the kernel's process group: SIGTERM, then SIGKILL after the grace period.
func (p *LocalProvisioner) stop(lk *localKernel) {
	if lk.cmd == nil {
		return
	}
	grace := p.StopGrace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	_ = syscall.Kill(-lk.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-lk.done:
	case <-time.After(grace):
		_ = syscall.Kill(-lk.cmd.Process.Pid, syscall.SIGKILL)
		<-lk.done
	}
	lk.cmd = nil
}

func (p *LocalProvisioner) kernel(id string) (*localKernel, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lk, ok := p.kernels[id]
	if !ok {
		return nil, fmt.Errorf("kernel %s: %w", id, ErrNotFound)
	}
	return lk, nil
}

// Interrupt implements Provisioner: SIGINT to the kernel's process group.
func (p *LocalProvisioner) Interrupt(_ context.Context, id string) error {
	lk, err := p.kernel(id)
	if err != nil {
		return err
	}
	lk.op.Lock()
	defer lk.op.Unlock()
	if lk.cmd == nil {
		return errors.New("the kernel is not running")
	}
	return syscall.Kill(-lk.cmd.Process.Pid, syscall.SIGINT)
}

// Restart implements Provisioner.
func (p *LocalProvisioner) Restart(ctx context.Context, id string) (*jupyter.ConnectionInfo, error) {
	lk, err := p.kernel(id)
	if err != nil {
		return nil, err
	}
	lk.op.Lock()
	p.stop(lk)
	_ = os.Remove(lk.file)
	err = p.spawn(id, lk)
	lk.op.Unlock()
	if err != nil {
		return nil, err
	}
	return p.Wait(ctx, id, func(string) {})
}

// Suspend implements Provisioner.
func (p *LocalProvisioner) Suspend(_ context.Context, id string) error {
	lk, err := p.kernel(id)
	if err != nil {
		return err
	}
	lk.op.Lock()
	defer lk.op.Unlock()
	p.stop(lk)
	_ = os.Remove(lk.file)
	return nil
}

// Resume implements Provisioner: the process starts again, fresh, as a pod would come back.
func (p *LocalProvisioner) Resume(_ context.Context, id string) error {
	lk, err := p.kernel(id)
	if err != nil {
		return err
	}
	lk.op.Lock()
	defer lk.op.Unlock()
	if lk.cmd != nil {
		p.stop(lk)
		_ = os.Remove(lk.file)
	}
	return p.spawn(id, lk)
}

// Shutdown implements Provisioner.
func (p *LocalProvisioner) Shutdown(_ context.Context, id string) error {
	p.mu.Lock()
	lk, ok := p.kernels[id]
	delete(p.kernels, id)
	p.mu.Unlock()
	if !ok {
		return fmt.Errorf("kernel %s: %w", id, ErrNotFound)
	}
	lk.op.Lock()
	defer lk.op.Unlock()
	p.stop(lk)
	_ = os.Remove(lk.file)
	p.forgetState(id)
	return nil
}

// Alive implements Provisioner.
func (p *LocalProvisioner) Alive(_ context.Context, id string) bool {
	lk, err := p.kernel(id)
	if err != nil {
		return false
	}
	lk.op.Lock()
	defer lk.op.Unlock()
	if lk.cmd == nil {
		return false
	}
	select {
	case <-lk.done:
		return false
	default:
		return true
	}
}

// Restore implements Provisioner: local kernels die with the gateway, so there is nothing.
func (p *LocalProvisioner) Restore(context.Context) ([]*Instance, error) { return nil, nil }

// Report implements Provisioner (nothing to record locally).
func (p *LocalProvisioner) Report(string, Activity) {}

// Close stops every kernel.
func (p *LocalProvisioner) Close() {
	p.mu.Lock()
	ks := p.kernels
	p.kernels = nil
	p.mu.Unlock()
	for _, lk := range ks {
		lk.op.Lock()
		p.stop(lk)
		lk.op.Unlock()
		_ = os.Remove(lk.file)
	}
}

// Local kernels' ports are drawn from [localPortMin, localPortMax), below Linux's ephemeral
// range (32768-60999): a port picked there could be taken, before the kernel binds it, as the
// local port of one of the many outgoing connections a gateway makes.
const (
	localPortMin = 20000
	localPortMax = 30000
)

// newConnectionInfo picks five free ports on ip and a random key.
func newConnectionInfo(ip string) (*jupyter.ConnectionInfo, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	ports := make([]int, 0, 5)
	for tries := 0; len(ports) < 5; tries++ {
		if tries > 1000 {
			return nil, fmt.Errorf("finding five free ports on %s in [%d, %d)", ip, localPortMin, localPortMax)
		}
		n, err := rand.Int(rand.Reader, big.NewInt(localPortMax-localPortMin))
		if err != nil {
			return nil, err
		}
		port := localPortMin + int(n.Int64())
		l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			continue // in use
		}
		ls = append(ls, l)
		ports = append(ports, port)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return &jupyter.ConnectionInfo{
		IP: ip, Transport: "tcp", SignatureScheme: jupyter.SignatureScheme, Key: hex.EncodeToString(key),
		ShellPort: ports[0], IOPubPort: ports[1], StdinPort: ports[2], ControlPort: ports[3], HBPort: ports[4],
	}, nil
}

// listens reports whether the kernel accepts connections on its shell and heartbeat ports.
func listens(info *jupyter.ConnectionInfo) bool {
	for _, port := range []int{info.ShellPort, info.HBPort} {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(info.IP, strconv.Itoa(port)), 200*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
	}
	return true
}
