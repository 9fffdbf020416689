package webhook_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
	"github.com/elastic-jupyter/elastic-jupyter/webhook"
)

// The namespace of the team policy (the one config/webhook/rbac.yaml names), and the user the
// webhook runs as, with nothing but config/webhook/rbac.yaml.
const (
	systemNS    = "elastic-jupyter-system"
	webhookUser = "elastic-jupyter-webhook"
	testImage   = "example.com/elastic-jupyter:test"
)

var (
	env *testenv.Env
	// webhookConfig acts as webhookUser.
	webhookConfig *rest.Config
	// metricsURL is the webhook's metrics endpoint.
	metricsURL string
	logs       testenv.SyncBuffer
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run starts the control plane, with kube-scheduler and kube-controller-manager for the
// scheduling test and the webhook configurations of config/webhook pointed at the webhook this
// process serves over TLS (envtest makes the CA and serving certificate and registers them),
// then runs the tests.
func run(m *testing.M) int {
	var err error
	env, err = testenv.Start(testenv.Options{
		Scheduler: true, ControllerManager: true,
		Webhooks: envtest.WebhookInstallOptions{Paths: []string{filepath.Join(testenv.RepoRoot(), "config", "webhook", "manifests.yaml")}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := setUp(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "setting up:", err)
		return 1
	}

	wh := env.Envtest.WebhookInstallOptions
	metricsAddr, probeAddr := testenv.FreeAddr(), testenv.FreeAddr()
	metricsURL = "http://" + metricsAddr + "/metrics"
	opts := webhook.Options{
		Host: wh.LocalServingHost, Port: wh.LocalServingPort, CertDir: wh.LocalServingCertDir,
		MetricsAddr: metricsAddr, ProbeAddr: probeAddr, PolicyNamespace: systemNS,
		Mutate: webhook.MutateOptions{LauncherImage: testImage},
	}
	logf.SetLogger(funcr.New(func(prefix, args string) { fmt.Fprintln(&logs, prefix, args) }, funcr.Options{Verbosity: 1}))
	mgr, err := webhook.NewManager(webhookConfig, opts)
	if err == nil {
		err = webhook.Register(mgr, opts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			fmt.Fprintln(os.Stderr, "the webhook's manager:", err)
		}
	}()
	if err := waitReady(ctx, "http://"+probeAddr+"/readyz", done); err != nil {
		fmt.Fprintln(os.Stderr, "the webhook did not turn ready:", err, "\n", logs.String())
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "webhook logs:\n%s\n", logs.String())
	}
	return code
}

// setUp creates the namespaces, the team policy, and the webhook's user bound to the roles of
// config/webhook/rbac.yaml.
func setUp(ctx context.Context) error {
	c := env.Client
	for _, ns := range []string{systemNS, "team-a", "team-mig", "team-sched", "team-quota"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	if err := c.Create(ctx, policyConfigMap(1)); err != nil {
		return err
	}
	var err error
	webhookConfig, err = env.GrantManifest(ctx, rest.ImpersonationConfig{UserName: webhookUser}, filepath.Join("config", "webhook", "rbac.yaml"))
	return err
}

// waitReady polls the webhook's /readyz until it passes (the server listens and the informers
// have synced), or the manager stops.
func waitReady(ctx context.Context, url string, done <-chan error) error {
	return wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 2*time.Minute, true, func(context.Context) (bool, error) {
		select {
		case err := <-done:
			return false, fmt.Errorf("the manager stopped: %w", err)
		default:
		}
		resp, err := http.Get(url) //nolint:noctx // a local probe
		if err != nil {
			return false, nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// policyConfigMap is the team policy of the tests, with team-a's maximum.
func policyConfigMap(max int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: webhook.DefaultPolicyConfigMap, Namespace: systemNS},
		Data: map[string]string{webhook.PolicyKey: fmt.Sprintf(`teams:
  - name: team-a
    namespaces: [team-a]
    gpu: {resourceName: nvidia.com/gpu, maxPerKernel: %d, clientMayRequest: true}
    tolerations: [{key: dedicated, operator: Equal, value: team-a, effect: NoSchedule}]
  - name: team-mig
    namespaces: [team-mig]
    gpu: {resourceName: nvidia.com/mig-1g.10gb, maxPerKernel: 1}
  - name: team-sched
    namespaces: [team-sched]
    gpu: {maxPerKernel: 1}
    tolerations: [{key: dedicated, operator: Equal, value: team-sched, effect: NoSchedule}]
    nodeSelector: {elastic-jupyter.test/pool: sched}
  - name: team-quota
    namespaces: [team-quota]
    gpu: {defaultPerKernel: 1, maxPerKernel: 1}
    maxKernelsPerUser: 3
    maxGPUsPerUser: 1
`, max)},
	}
}

// webhookRequests is how many admission requests the webhook served on path, from its
// metrics endpoint.
func webhookRequests(t *testing.T, path string) int {
	t.Helper()
	resp, err := http.Get(metricsURL) //nolint:noctx // a local endpoint
	if err != nil {
		t.Fatalf("reading the webhook's metrics: %v", err)
	}
	defer resp.Body.Close()
	total := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "controller_runtime_webhook_requests_total{") || !strings.Contains(line, `webhook="`+path+`"`) {
			continue
		}
		n, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		total += int(n)
	}
	return total
}

// warnings records the warnings the API server returns to a client.
type warnings struct {
	mu   sync.Mutex
	list []string
}

// HandleWarningHeaderWithContext implements rest.WarningHandlerWithContext.
func (w *warnings) HandleWarningHeaderWithContext(_ context.Context, _ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

func (w *warnings) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.list, "\n")
}

// warningClient is an admin client that records the API server's warnings.
func warningClient(t *testing.T) (client.Client, *warnings) {
	t.Helper()
	w := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandlerWithContext = w
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}
