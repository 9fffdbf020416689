// Package devcluster runs the whole elastic-jupyter system on one machine without a container
// runtime: etcd, kube-apiserver, kube-scheduler and kube-controller-manager (built from their Go
// modules by hack/tools.sh), devnode with fake GPUs in place of a kubelet, and the controller
// and webhook, all as background processes whose state, pids and logs live in one directory.
// `make up` and `make down` drive it, and so do the end-to-end tests.
package devcluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/internal/rootfs"
)

// Config says where and how the local cluster runs.
type Config struct {
	// Dir holds the cluster's state: pki/, etcd/, logs/, pids/, kubeconfig, env, and volumes/
	// for hostPath PersistentVolumes both devnodes share (see Cluster.HostPathVolume).
	Dir string
	// ToolsBin holds etcd, kube-apiserver, kube-scheduler, kube-controller-manager, kubectl.
	ToolsBin string
	// Root is this repository (crds/, examples/).
	Root string
	// ProjectBin holds the fresh elastic-jupyter and kernel-launcher builds.
	ProjectBin string
	// RootfsDir is the JupyterLab 4 root filesystem the devnodes run NotebookImageRepository
	// from (devnode --image-root). Empty: where hack/rootfs.sh builds it,
	// $ELASTIC_JUPYTER_CACHE/rootfs/jupyterlab-trixie (cache default ~/.cache/elastic-jupyter).
	RootfsDir string
	// APIPort is kube-apiserver's port on 127.0.0.1 (default 6443).
	APIPort int
	// EtcdPort is etcd's client port on 127.0.0.1 (default 2379; the peer port is the next).
	EtcdPort int
	// WebhookPort is the webhook's port on 127.0.0.1 (default 9443).
	WebhookPort int
	// ControllerMetricsPort and ControllerHealthPort are the controller's (default 8080, 8081);
	// the webhook uses the next two (8082, 8083).
	ControllerMetricsPort, ControllerHealthPort int
	// GPUs is the number of fake GPUs on the GPU devnode (0: none; `make up` asks for 2).
	GPUs int
	// CPUs is the cpu capacity each devnode advertises, in cores (0: the host's CPU count, as
	// a kubelet does). Kernels request cpu, so this bounds how many fit on a node: the start
	// benchmarks ask for more than a small machine has.
	CPUs int
	// Pods is each devnode's pod capacity (0: devnode's default, 110).
	Pods int
	// NodeName prefixes the devnodes' names: NodeName-cpu and NodeName-gpu (default "devnode").
	NodeName string
	// Attached ties every process to the caller (tests); otherwise they run on after it.
	Attached bool
}

func (c *Config) defaults() {
	if c.APIPort == 0 {
		c.APIPort = 6443
	}
	if c.EtcdPort == 0 {
		c.EtcdPort = 2379
	}
	if c.WebhookPort == 0 {
		c.WebhookPort = 9443
	}
	if c.ControllerMetricsPort == 0 {
		c.ControllerMetricsPort = 8080
	}
	if c.ControllerHealthPort == 0 {
		c.ControllerHealthPort = 8081
	}
	if c.NodeName == "" {
		c.NodeName = "devnode"
	}
	if c.RootfsDir == "" {
		c.RootfsDir = rootfs.Dir()
	}
	// Every process runs in Dir: the paths it is given must not depend on where make ran.
	for _, p := range []*string{&c.Dir, &c.ToolsBin, &c.Root, &c.ProjectBin, &c.RootfsDir} {
		if *p != "" {
			*p, _ = filepath.Abs(*p)
		}
	}
}

// Cluster is a running local cluster.
type Cluster struct {
	cfg   Config
	out   io.Writer
	pki   *pki
	procs []*proc
	// Kubeconfig is the admin kubeconfig's path.
	Kubeconfig string
}

// componentOrder is the start order; Down stops in reverse.
var componentOrder = []string{
	"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager",
	"devnode-cpu", "devnode-gpu", "webhook", "controller",
}

// Down stops every process an earlier Up in dir started, and nothing else (pids are checked
// against their working directory). It leaves logs and state for inspection.
func Down(dir string, out io.Writer) error {
	order := make([]string, len(componentOrder))
	for i, n := range componentOrder {
		order[len(order)-1-i] = n
	}
	if err := stopPidFiles(dir, order, 30*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(out, "down: stopped everything `make up` started in %s\n", dir)
	return nil
}

// Stop stops this cluster's processes (see Down).
func (cl *Cluster) Stop() error { return Down(cl.cfg.Dir, cl.out) }

// Config returns the cluster's configuration, defaults filled in.
func (cl *Cluster) Config() Config { return cl.cfg }

// Up starts whatever of the cluster is not running yet and waits until it is ready. Running
// it again is safe: it finds the running processes and starts only what is missing.
func Up(ctx context.Context, cfg Config, out io.Writer) (*Cluster, error) {
	cfg.defaults()
	if cfg.GPUs < 0 {
		return nil, fmt.Errorf("GPUS=%d: the number of fake GPUs is 0 or more", cfg.GPUs)
	}
	if cfg.CPUs < 0 {
		return nil, fmt.Errorf("CPUS=%d: the nodes' cpu capacity is a number of cores, or 0 for the host's", cfg.CPUs)
	}
	if cfg.Pods < 0 {
		return nil, fmt.Errorf("PODS=%d: the nodes' pod capacity is a number of pods, or 0 for 110", cfg.Pods)
	}
	if err := checkRootfs(cfg.RootfsDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	p, err := loadOrCreatePKI(filepath.Join(cfg.Dir, "pki"))
	if err != nil {
		return nil, fmt.Errorf("creating the cluster's CA: %w", err)
	}
	cl := &Cluster{cfg: cfg, out: out, pki: p, Kubeconfig: filepath.Join(cfg.Dir, "kubeconfig")}
	steps := []struct {
		what string
		run  func(context.Context) error
	}{
		{"the control plane", cl.upControlPlane},
		{"the devnodes", cl.upNode},
		{"the webhook", cl.upWebhook},
		{"the controller", cl.upController},
		{"the quick start (gateway and notebook server)", cl.upQuickstart},
	}
	for _, s := range steps {
		start := time.Now()
		if err := s.run(ctx); err != nil {
			return cl, fmt.Errorf("starting %s: %w", s.what, err)
		}
		fmt.Fprintf(out, "up: %s ready (%s)\n", s.what, time.Since(start).Round(100*time.Millisecond))
	}
	return cl, nil
}

// running reports whether the component recorded in Dir/pids runs.
func (cl *Cluster) running(name string) bool {
	data, err := os.ReadFile(filepath.Join(cl.cfg.Dir, "pids", name+".pid"))
	if err != nil {
		return false
	}
	var pid int
	if _, err := fmt.Sscan(string(data), &pid); err != nil {
		return false
	}
	return alive(pid) && ours(pid, cl.cfg.Dir)
}

// upControlPlaneOnly starts just the control plane (for tests of this package).
func upControlPlaneOnly(ctx context.Context, cfg Config, out io.Writer) (*Cluster, error) {
	cfg.defaults()
	p, err := loadOrCreatePKI(filepath.Join(cfg.Dir, "pki"))
	if err != nil {
		return nil, err
	}
	cl := &Cluster{cfg: cfg, out: out, pki: p, Kubeconfig: filepath.Join(cfg.Dir, "kubeconfig")}
	return cl, cl.upControlPlane(ctx)
}

// FreePorts sets cfg's ports to ports free on 127.0.0.1 now, with the ports they imply free
// too (etcd's peer port, the webhook's metrics and health ports next to the controller's):
// for tests that run a cluster beside others. Another process may still take one before Up
// binds it.
func FreePorts(cfg *Config) error {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	// run finds n consecutive free ports and keeps them until FreePorts returns.
	run := func(n int) (int, error) {
		for range 100 {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return 0, err
			}
			base := l.Addr().(*net.TCPAddr).Port
			got := []net.Listener{l}
			for i := 1; i < n; i++ {
				next, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(base+i))
				if err != nil {
					break
				}
				got = append(got, next)
			}
			if len(got) == n {
				held = append(held, got...)
				return base, nil
			}
			for _, g := range got {
				_ = g.Close()
			}
		}
		return 0, fmt.Errorf("found no %d consecutive free ports on 127.0.0.1", n)
	}
	var err error
	if cfg.APIPort, err = run(1); err != nil {
		return err
	}
	if cfg.EtcdPort, err = run(2); err != nil {
		return err
	}
	if cfg.WebhookPort, err = run(1); err != nil {
		return err
	}
	base, err := run(4)
	if err != nil {
		return err
	}
	cfg.ControllerMetricsPort, cfg.ControllerHealthPort = base, base+1
	return nil
}
