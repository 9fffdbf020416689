package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	ejscheme "github.com/elastic-jupyter/elastic-jupyter/internal/scheme"
)

// Paths the webhooks are served on; config/webhook/manifests.yaml and the chart name them.
const (
	// PathMutateKernelPod is the mutating webhook of kernel pods.
	PathMutateKernelPod = "/mutate-kernel-pod"
	// PathValidateKernelPod is the validating webhook of kernel pods.
	PathValidateKernelPod = "/validate-kernel-pod"
	// PathValidatePrefix, followed by a kind in lower case, is the validating webhook of
	// that elastic-jupyter kind (for example /validate-kubeflow-tkestack-io-v1alpha1-jupyterkernelspec,
	// the path controller-runtime's webhook builder generates for it).
	PathValidatePrefix = "/validate-kubeflow-tkestack-io-v1alpha1-"
)

// DefaultPort is the webhook's HTTPS port (docs/contracts.md, "Ports").
const DefaultPort = 9443

// Options configure the webhook.
type Options struct {
	// Host is the address the webhook serves HTTPS on (default: all).
	Host string
	// Port is the HTTPS port (default DefaultPort).
	Port int
	// CertDir holds tls.crt and tls.key; a rotation of the files is picked up without a
	// restart.
	CertDir string
	// MetricsAddr is the metrics endpoint's address ("0" turns it off).
	MetricsAddr string
	// ProbeAddr is the address of /healthz and /readyz ("0" turns them off).
	ProbeAddr string
	// PolicyNamespace is the namespace of the team policy ConfigMap (required).
	PolicyNamespace string
	// PolicyConfigMap is the name of the team policy ConfigMap (default
	// DefaultPolicyConfigMap).
	PolicyConfigMap string
	// Mutate are the mutation's settings.
	Mutate MutateOptions
}

// Validate checks the options; each error names the flag and the fix.
func (o *Options) Validate() error {
	var errs []error
	if o.PolicyNamespace == "" {
		errs = append(errs, errors.New("--policy-namespace is empty: name the namespace of the team policy ConfigMap (in a pod it defaults to the pod's namespace, from POD_NAMESPACE or the service account)"))
	} else if msgs := validation.IsDNS1123Label(o.PolicyNamespace); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--policy-namespace %q is not a namespace name: %v", o.PolicyNamespace, msgs))
	}
	if o.PolicyConfigMap != "" {
		if msgs := validation.IsDNS1123Subdomain(o.PolicyConfigMap); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("--policy-configmap %q is not a ConfigMap name: %v", o.PolicyConfigMap, msgs))
		}
	}
	if o.Port < 0 || o.Port > 65535 {
		errs = append(errs, fmt.Errorf("--port %d is not a TCP port: give 1-65535 (default %d)", o.Port, DefaultPort))
	}
	if o.CertDir != "" {
		for _, f := range []string{"tls.crt", "tls.key"} {
			if _, err := os.Stat(filepath.Join(o.CertDir, f)); err != nil {
				errs = append(errs, fmt.Errorf("--cert-dir %s has no readable %s: mount the webhook's serving certificate Secret there (keys tls.crt and tls.key): %w", o.CertDir, f, err))
			}
		}
	}
	return errors.Join(errs...)
}

// NewManager returns a manager that serves the webhooks and nothing else. Its cache watches,
// among ConfigMaps, only the team policy ConfigMap, so that the webhook needs no more than
// get/list/watch on that one ConfigMap (config/webhook/rbac.yaml).
func NewManager(cfg *rest.Config, opts Options) (manager.Manager, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.PolicyConfigMap == "" {
		opts.PolicyConfigMap = DefaultPolicyConfigMap
	}
	if opts.Port == 0 {
		opts.Port = DefaultPort
	}
	scheme, err := ejscheme.New()
	if err != nil {
		return nil, fmt.Errorf("creating the webhook's manager: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress: opts.ProbeAddr,
		WebhookServer:          crwebhook.NewServer(crwebhook.Options{Host: opts.Host, Port: opts.Port, CertDir: opts.CertDir}),
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&corev1.ConfigMap{}: {
				Namespaces: map[string]cache.Config{opts.PolicyNamespace: {}},
				Field:      fields.OneTermEqualSelector("metadata.name", opts.PolicyConfigMap),
			},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the webhook's manager: %w", err)
	}
	return mgr, nil
}

// Register serves the webhooks on mgr's webhook server (paths PathMutateKernelPod,
// PathValidateKernelPod and PathValidatePrefix+kind) and adds the health checks: /readyz
// passes once the webhook server listens and the informers have synced. mgr's scheme must
// hold the core and elastic-jupyter types. It works on NewManager's manager or on another
// (for example the controller's), as long as that manager's cache may watch the policy
// ConfigMap and the kernelspecs, templates and gateways.
func Register(mgr manager.Manager, opts Options) error {
	if opts.PolicyConfigMap == "" {
		opts.PolicyConfigMap = DefaultPolicyConfigMap
	}
	log := mgr.GetLogger().WithName("webhook")
	d := &deps{
		cache: mgr.GetClient(),
		live:  mgr.GetAPIReader(),
		policy: &PolicyStore{Reader: mgr.GetClient(), Log: log.WithName("policy"),
			Key: types.NamespacedName{Namespace: opts.PolicyNamespace, Name: opts.PolicyConfigMap}},
		opts: opts.Mutate,
		log:  log,
	}
	// Start the informers with the manager, so that the first kernel pod does not wait for
	// them to sync.
	for _, obj := range []client.Object{&corev1.ConfigMap{}, &ejv1.JupyterKernelSpec{}, &ejv1.JupyterKernelTemplate{}, &ejv1.JupyterGateway{}} {
		if _, err := mgr.GetCache().GetInformer(context.Background(), obj); err != nil {
			return fmt.Errorf("watching %T: %w", obj, err)
		}
	}
	pods := &KernelPodWebhook{deps: d}
	srv := mgr.GetWebhookServer()
	srv.Register(PathMutateKernelPod, pods.mutatingWebhook(mgr.GetScheme()))
	if err := ctrl.NewWebhookManagedBy(mgr, &corev1.Pod{}).WithValidator(pods).WithValidatorCustomPath(PathValidateKernelPod).Complete(); err != nil {
		return fmt.Errorf("serving the kernel pod validation: %w", err)
	}
	for _, w := range kindWebhooks(d) {
		if err := w.register(mgr); err != nil {
			return fmt.Errorf("serving the validation of %s: %w", w.kind, err)
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return fmt.Errorf("adding the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("webhook-server", srv.StartedChecker()); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	if err := mgr.AddReadyzCheck("informers", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("the informers have not synced yet")
		}
		return nil
	}); err != nil {
		return fmt.Errorf("adding the readiness check: %w", err)
	}
	return nil
}

// ValidatedKinds are the elastic-jupyter kinds the validating webhook checks.
func ValidatedKinds() []string {
	return []string{"JupyterKernelSpec", "JupyterKernelTemplate", "JupyterGateway", "JupyterNotebook", "JupyterKernel"}
}

// ValidatePath is the path of the validating webhook of kind.
func ValidatePath(kind string) string {
	return PathValidatePrefix + strings.ToLower(kind)
}
