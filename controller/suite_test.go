package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"k8s.io/client-go/rest"

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
	logs       = &testenv.SyncBuffer{}
	metricsURL string
	probeURL   string
)

// The controller runs in the tests as it does in a cluster: as a service account holding only
// the RBAC of config/rbac/ (ClusterRole, and the Lease Role in its namespace).
const (
	leaseNamespace = "elastic-jupyter"
	controllerUser = "system:serviceaccount:elastic-jupyter:elastic-jupyter-controller"
)

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
	k8s, err = client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctrl.SetLogger(zap.New(zap.WriteTo(logs), zap.UseDevMode(false)))
	// As the service account, with config/rbac/ (whose Lease Role's namespace Grant creates).
	cfg, err := env.GrantManifest(context.Background(), rest.ImpersonationConfig{
		UserName: controllerUser, Groups: []string{"system:serviceaccounts", "system:authenticated"},
	}, filepath.Join("config", "rbac", "role.yaml"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "granting the controller its RBAC:", err)
		return 1
	}

	metricsAddr, probeAddr := testenv.FreeAddr(), testenv.FreeAddr()
	metricsURL, probeURL = "http://"+metricsAddr, "http://"+probeAddr
	mgr, err := controller.NewManager(cfg, controller.ManagerOptions{
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
