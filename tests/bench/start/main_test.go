// Package start measures how long kernels take to start on the whole system as `make up`
// runs it (real control plane, webhook, controller, devnodes, the quick start's gateway):
//
//   - BenchmarkStart: one kernel of the quick start's python3 kernelspec (a real ipykernel) at
//     a time, b.N times: POST /api/kernels, open the websocket at once, send print(1) as its
//     first message, until the "1" arrives; each start split into the control plane's part
//     (POST to the kernel's container running) and the kernel process's (container running to
//     the first output).
//   - BenchmarkBurst: b.N fake kernels (cmd/fake-kernel, a few MiB each) started at once, each
//     sending its cell at once; every one must print (errors fail the benchmark).
//
// The system comes up once for the package, on free ports, when the first benchmark needs it
// (about a minute), and goes down after the last; `go test` without -bench starts nothing.
// The tables print after the benchmark lines (ELASTIC_JUPYTER_BENCH_KEEP=1 keeps the logs):
//
//	go test -run XXX -bench . -benchtime 20x -timeout 60m ./tests/bench/start
//
// Timestamps are this process's, taken as its watches of pods and JupyterKernels see each
// step (the API's own timestamps have one-second resolution): a step shows when the API
// server has it, a few milliseconds after the component did it.
package start

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/controller"
	"github.com/elastic-jupyter/elastic-jupyter/internal/devcluster"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

// The nodes' capacity: room for a few hundred small kernels on a 2-core machine (the
// scheduler counts requests; devnode enforces none).
const (
	nodeCPUs = 64
	nodePods = 300
)

// FakeSpec is the kernelspec of the fake kernel, run from the project image where devnode
// maps the fresh builds; its requests are tiny so hundreds fit on the CPU node.
const FakeSpec = "fake"

func fakeKernelSpec() string {
	return fmt.Sprintf(`apiVersion: kubeflow.tkestack.io/v1alpha1
kind: JupyterKernelSpec
metadata:
  name: %s
  namespace: %s
spec:
  language: python
  displayName: "Fake Python (benchmarks)"
  image: %s
  command: [%q, "-f", "{connection_file}"]
  interruptMode: signal
  resources:
    cpu: 10m
    memory: 32Mi
`, FakeSpec, devcluster.TeamNamespace, version.Image(), devcluster.FakeKernelPath)
}

// system is the running system the benchmarks share.
type system struct {
	cluster *devcluster.Cluster
	dir     string
	gateway *gatewayClient
	kube    kubernetes.Interface
	track   *tracker
	stop    context.CancelFunc
}

// keepEnv, set to anything, keeps the system's state and logs (its directory is printed)
// after a successful run too, to look at the components' logs.
const keepEnv = "ELASTIC_JUPYTER_BENCH_KEEP"

var (
	sysOnce sync.Once
	sys     *system
	sysErr  error
	// failed keeps the state directory and dumps the logs when the package ends.
	failed bool
)

// theSystem brings the system up the first time a benchmark asks, or skips the benchmark
// where it cannot run.
func theSystem(b *testing.B) *system {
	b.Helper()
	if os.Geteuid() != 0 {
		b.Skip("devnode needs root: run the start benchmarks as root")
	}
	sysOnce.Do(func() { sys, sysErr = up() })
	if sysErr != nil {
		failed = true
		b.Fatal("bringing the system up:", sysErr)
	}
	return sys
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	code := m.Run()
	if code != 0 {
		failed = true
	}
	if sys != nil || sysErr != nil {
		if err := down(); err != nil {
			fmt.Fprintln(os.Stderr, "make down failed:", err)
			code = 1
		}
	}
	printStartTable()
	printBurstTable()
	return code
}

func up() (*system, error) {
	dir, err := os.MkdirTemp("", "elastic-jupyter-bench-start-")
	if err != nil {
		return nil, err
	}
	s := &system{dir: dir}
	sys = s // down cleans up whatever came up
	cfg := devcluster.Config{
		Dir: dir, ToolsBin: testenv.BinDir(), Root: testenv.RepoRoot(),
		ProjectBin: filepath.Join(dir, "bin"),
		GPUs:       2, CPUs: nodeCPUs, Pods: nodePods, NodeName: "bench", Attached: true,
	}
	if err := devcluster.FreePorts(&cfg); err != nil {
		return nil, err
	}
	if err := devcluster.Build(testenv.RepoRoot(), cfg.ProjectBin); err != nil {
		return nil, fmt.Errorf("building: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	s.cluster, err = devcluster.Up(ctx, cfg, os.Stdout)
	if err != nil {
		return nil, fmt.Errorf("make up: %w", err)
	}
	env, err := s.cluster.Env(ctx)
	if err != nil {
		return nil, err
	}
	enc, err := s.cluster.KubectlOutput(ctx, "-n", devcluster.TeamNamespace, "get", "secret",
		devcluster.GatewayName+controller.GatewayTokenSecretSuffix, "-o", "jsonpath={.data."+controller.TokenKey+"}")
	if err != nil {
		return nil, err
	}
	token, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return nil, fmt.Errorf("the gateway token: %w", err)
	}
	s.gateway = newGatewayClient(env.GatewayURL, string(token))

	// The fake kernelspec, offered by the quick start's gateway next to its own.
	if err := s.cluster.KubectlApply(ctx, fakeKernelSpec()); err != nil {
		return nil, err
	}
	if _, err := s.cluster.KubectlOutput(ctx, "-n", devcluster.TeamNamespace, "patch", "jupytergateway", devcluster.GatewayName,
		"--type=merge", "-p", `{"spec":{"kernels":["python3","python3-gpu","`+FakeSpec+`"]}}`); err != nil {
		return nil, err
	}

	rc, err := clientcmd.BuildConfigFromFlags("", s.cluster.Kubeconfig)
	if err != nil {
		return nil, err
	}
	rc.QPS, rc.Burst = 200, 400 // the benchmark's own reads must not queue behind client-side limits
	if s.kube, err = kubernetes.NewForConfig(rc); err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	if err := checkCapacity(ctx, s.kube, cfg.NodeName+"-cpu"); err != nil {
		return nil, err
	}
	watchCtx, stop := context.WithCancel(context.Background())
	s.stop = stop
	if s.track, err = startTracker(watchCtx, s.kube, dyn, devcluster.TeamNamespace); err != nil {
		return nil, err
	}
	if err := s.gateway.waitSpec(ctx, FakeSpec); err != nil {
		return nil, err
	}
	return s, nil
}

// checkCapacity fails unless the CPU node advertises the capacity the benchmark asked for
// (make up's CPUS and PODS).
func checkCapacity(ctx context.Context, kube kubernetes.Interface, node string) error {
	n, err := kube.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
	if err != nil {
		return err
	}
	cpu, pods := n.Status.Capacity[corev1.ResourceCPU], n.Status.Capacity[corev1.ResourcePods]
	if cpu.Value() != nodeCPUs || pods.Value() != nodePods {
		return fmt.Errorf("node %s has capacity cpu %s, pods %s: want %d and %d (devcluster.Config CPUs, Pods)", node, cpu.String(), pods.String(), nodeCPUs, nodePods)
	}
	return nil
}

func down() error {
	s := sys
	if s == nil {
		return nil
	}
	if s.stop != nil {
		s.stop()
	}
	var err error
	if s.cluster != nil {
		err = s.cluster.Stop()
	}
	if failed || err != nil {
		dumpLogs(s.dir)
		fmt.Fprintln(os.Stderr, "state and logs kept in", s.dir)
		return err
	}
	if os.Getenv(keepEnv) != "" {
		fmt.Fprintln(os.Stderr, "state and logs kept in", s.dir, "("+keepEnv+" is set)")
		return nil
	}
	return os.RemoveAll(s.dir)
}

// dumpLogs prints the tail of every component's log.
func dumpLogs(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(os.Stderr, "==== %s\n%s\n", f, data)
	}
}

// cleanUp shuts the kernels down through the gateway and waits until nothing of them is
// left (JupyterKernels, pods), so the next run starts on an empty node.
func (s *system) cleanUp(ids []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		sem  = make(chan struct{}, 32)
	)
	for _, id := range ids {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := s.gateway.shutdown(ctx, id); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := s.track.waitGone(ctx, ids); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// gatewayClient calls the gateway's REST API with its token.
type gatewayClient struct {
	base, token string
	http        *http.Client
}

func newGatewayClient(base, token string) *gatewayClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	return &gatewayClient{base: base, token: token, http: &http.Client{Transport: tr, Timeout: 2 * time.Minute}}
}

func (g *gatewayClient) do(ctx context.Context, method, path, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, g.base+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "token "+g.token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

func (g *gatewayClient) shutdown(ctx context.Context, id string) error {
	code, body, err := g.do(ctx, "DELETE", "/api/kernels/"+id, "")
	if err != nil {
		return fmt.Errorf("shutting kernel %s down: %w", id, err)
	}
	if code != http.StatusNoContent && code != http.StatusNotFound {
		return fmt.Errorf("shutting kernel %s down: %d %s", id, code, body)
	}
	return nil
}

// waitSpec waits until the gateway offers the kernelspec (it reads its JupyterGateway live).
func (g *gatewayClient) waitSpec(ctx context.Context, name string) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		code, body, err := g.do(ctx, "GET", "/api/kernelspecs", "")
		if err == nil && code == http.StatusOK && strings.Contains(string(body), strconv.Quote(name)) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the gateway does not offer kernelspec %s (last answer %d %s, %v)", name, code, body, err)
		case <-tick.C:
		}
	}
}

// kernelLabel is the label that names a pod's kernel.
const kernelLabel = ejv1.LabelKernelID
