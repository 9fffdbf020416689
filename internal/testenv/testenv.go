// Package testenv runs a real Kubernetes control plane for tests: etcd and kube-apiserver
// through controller-runtime's envtest, with this project's CRDs installed, and optionally
// kube-scheduler and kube-controller-manager against it. The binaries are the ones
// hack/tools.sh builds from their Go modules into the cache (see BinDir).
//
// Every process it starts is killed when the test process dies, even without a clean Stop
// (parent-death signal), so no test run leaves a control plane behind.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	kruntime "k8s.io/apimachinery/pkg/runtime"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/process"
	ejscheme "github.com/elastic-jupyter/elastic-jupyter/internal/scheme"
)

// Options selects what Start runs besides etcd and kube-apiserver.
type Options struct {
	// Scheduler also runs kube-scheduler.
	Scheduler bool
	// ControllerManager also runs kube-controller-manager with Controllers.
	ControllerManager bool
	// Controllers are the kube-controller-manager controllers to run; empty means
	// DefaultControllers.
	Controllers []string
	// Webhooks are webhook configurations envtest installs, with a CA and serving
	// certificate it generates (see envtest.WebhookInstallOptions).
	Webhooks envtest.WebhookInstallOptions
	// APIServerArgs are extra kube-apiserver flags, "name=value" or "name".
	APIServerArgs []string
}

// DefaultControllers are the kube-controller-manager controllers the tests need: garbage
// collection of owned objects, namespace deletion, Deployments, node lifecycle (which removes
// the not-ready taint of a node that reports Ready) and Service endpoints.
var DefaultControllers = []string{
	"garbage-collector-controller", "namespace-controller", "deployment-controller",
	"replicaset-controller", "node-lifecycle-controller", "endpoints-controller",
	"endpointslice-controller", "pod-garbage-collector-controller", "taint-eviction-controller",
}

// Env is a running control plane.
type Env struct {
	// Config is an admin rest.Config for the API server.
	Config *rest.Config
	// Client is a controller-runtime client with the Kubernetes and elastic-jupyter types.
	Client client.Client
	// Scheme holds the Kubernetes and elastic-jupyter types.
	Scheme *kruntime.Scheme
	// Dir is a private directory holding the kubeconfig, certificates and logs; removed by
	// Stop unless the environment variable TESTENV_KEEP is set.
	Dir string
	// Kubeconfig is the path of an admin kubeconfig for the API server, for binaries.
	Kubeconfig string
	// Envtest is the underlying envtest environment.
	Envtest *envtest.Environment

	procs []*process.Process
	keep  bool
}

// RepoRoot returns the root of this repository (the directory holding go.mod).
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// CacheDir is where hack/tools.sh keeps its builds: $ELASTIC_JUPYTER_CACHE, or
// ~/.cache/elastic-jupyter.
func CacheDir() string {
	if d := os.Getenv("ELASTIC_JUPYTER_CACHE"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, ".cache", "elastic-jupyter")
}

// BinDir is the directory of the cached tool binaries.
func BinDir() string { return filepath.Join(CacheDir(), "bin") }

// Binary returns the path of a cached tool, or an error that says how to build it.
func Binary(name string) (string, error) {
	p := filepath.Join(BinDir(), name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s is not built in %s: run 'make tools' (hack/tools.sh) first: %w", name, BinDir(), err)
	}
	return p, nil
}

// newScheme is the components' scheme (package internal/scheme) with the CRD types, which
// envtest installs.
func newScheme() (*kruntime.Scheme, error) {
	s, err := ejscheme.New()
	if err != nil {
		return nil, err
	}
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		return nil, fmt.Errorf("adding the CRD types to the scheme: %w", err)
	}
	return s, nil
}

// Start runs a control plane as opts says, with the CRDs of crds/ installed.
func Start(opts Options) (_ *Env, retErr error) {
	for _, b := range []string{"etcd", "kube-apiserver", "kubectl"} {
		if _, err := Binary(b); err != nil {
			return nil, err
		}
	}
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "elastic-jupyter-testenv-")
	if err != nil {
		return nil, fmt.Errorf("creating the testenv directory: %w", err)
	}
	e := &Env{Dir: dir, Scheme: scheme}
	defer func() {
		if retErr != nil {
			e.keep = true // the logs explain the failure
			_ = e.Stop()
		}
	}()

	etcdPath, err := deathWrapper(dir, "etcd")
	if err != nil {
		return nil, err
	}
	apiPath, err := deathWrapper(dir, "kube-apiserver")
	if err != nil {
		return nil, err
	}
	te := &envtest.Environment{
		BinaryAssetsDirectory:    BinDir(),
		CRDDirectoryPaths:        []string{filepath.Join(RepoRoot(), "crds")},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   e.Scheme,
		WebhookInstallOptions:    opts.Webhooks,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	apiLog, err := logFile(dir, "kube-apiserver")
	if err != nil {
		return nil, err
	}
	etcdLog, err := logFile(dir, "etcd")
	if err != nil {
		return nil, err
	}
	api := te.ControlPlane.GetAPIServer()
	api.Path, api.Out, api.Err = apiPath, apiLog, apiLog
	for _, a := range opts.APIServerArgs {
		name, value, _ := strings.Cut(a, "=")
		api.Configure().Append(name, value)
	}
	te.ControlPlane.Etcd = &envtest.Etcd{Path: etcdPath, Out: etcdLog, Err: etcdLog}
	e.Envtest = te

	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver (logs in %s): %w", dir, err)
	}
	e.Config = cfg
	e.Client, err = client.New(cfg, client.Options{Scheme: e.Scheme})
	if err != nil {
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	if err := e.writeKubeconfig(); err != nil {
		return nil, err
	}
	if opts.Scheduler {
		if err := e.startScheduler(); err != nil {
			return nil, err
		}
	}
	if opts.ControllerManager {
		controllers := opts.Controllers
		if len(controllers) == 0 {
			controllers = DefaultControllers
		}
		if err := e.startControllerManager(controllers); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Stop stops every process Start started and removes Dir (unless TESTENV_KEEP is set).
func (e *Env) Stop() error {
	var errs []error
	for i := len(e.procs) - 1; i >= 0; i-- {
		if err := e.procs[i].Stop(20 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	e.procs = nil
	if e.Envtest != nil {
		if err := e.Envtest.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping etcd and kube-apiserver: %w", err))
		}
		e.Envtest = nil
	}
	if e.Dir != "" && os.Getenv("TESTENV_KEEP") == "" && !e.keep && len(errs) == 0 {
		if err := os.RemoveAll(e.Dir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// GVR is a small helper for tests that use dynamic clients.
func GVR(resource string) schema.GroupVersionResource {
	return ejv1.GroupVersion.WithResource(resource)
}
