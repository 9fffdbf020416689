package controller_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/elastic-jupyter/elastic-jupyter/controller"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// The control plane (with kube-controller-manager, for garbage collection and Deployments)
// and the controller's manager, shared by the tests of this package.
var (
	env        *testenv.Env
	k8s        client.WithWatch
	logs       = &syncBuffer{}
	metricsURL string
	probeURL   string
)

// leaseNamespace holds the manager's leader election Lease.
const leaseNamespace = "default"

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = testenv.Start(testenv.Options{ControllerManager: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	k8s, err = client.NewWithWatch(env.Config, client.Options{Scheme: controller.NewScheme()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logs), zap.UseDevMode(false)))

	metricsAddr, probeAddr := freeAddr(), freeAddr()
	metricsURL, probeURL = "http://"+metricsAddr, "http://"+probeAddr
	mgr, err := controller.NewManager(env.Config, controller.ManagerOptions{
		MetricsAddr: metricsAddr, ProbeAddr: probeAddr,
		LeaderElection: true, LeaderElectionNamespace: leaseNamespace,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := controller.SetupWithManager(mgr, controller.Options{
		GatewayImage: "example.com/elastic-jupyter:test", NotebookImage: "example.com/notebook:test",
		GPUResources: []corev1.ResourceName{"nvidia.com/mig-1g.10gb"},
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := mgr.Start(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "manager:", err)
		}
	}()
	code := m.Run()
	cancel()
	wg.Wait()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "controller logs:\n%s\n", logs.String())
	}
	return code
}

// freeAddr is a free local TCP address.
func freeAddr() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// syncBuffer collects the controller's logs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
