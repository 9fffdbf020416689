package webhook

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// Options configure the webhook.
type Options struct {
	// Host and Port are where the webhook serves HTTPS (default :9443).
	Host string
	Port int
	// CertDir holds tls.crt and tls.key; they are reloaded when they change.
	CertDir string
	// MetricsAddr and ProbeAddr serve metrics and /healthz, /readyz ("0" turns one off).
	MetricsAddr, ProbeAddr string
	// PolicyNamespace and PolicyConfigMap name the team policy ConfigMap.
	PolicyNamespace, PolicyConfigMap string
	// Mutate are the mutation's settings.
	Mutate MutateOptions
}

// NewManager returns a manager that serves the webhooks, with a cache that watches only the
// policy ConfigMap among ConfigMaps.
func NewManager(cfg *rest.Config, opts Options) (manager.Manager, error) {
	if opts.PolicyNamespace == "" {
		return nil, fmt.Errorf("the policy namespace is required (--policy-namespace, or run in a pod)")
	}
	if opts.PolicyConfigMap == "" {
		opts.PolicyConfigMap = DefaultPolicyConfigMap
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := ejv1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return ctrl.NewManager(cfg, ctrl.Options{
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
}

// Register serves the webhooks on mgr's webhook server and adds health checks.
func Register(mgr manager.Manager, opts Options) error {
	if opts.PolicyConfigMap == "" {
		opts.PolicyConfigMap = DefaultPolicyConfigMap
	}
	h := &handlers{
		reader:  mgr.GetClient(),
		policy:  &PolicyStore{Reader: mgr.GetClient(), Key: types.NamespacedName{Namespace: opts.PolicyNamespace, Name: opts.PolicyConfigMap}},
		opts:    opts.Mutate,
		decoder: admission.NewDecoder(mgr.GetScheme()),
	}
	srv := mgr.GetWebhookServer()
	srv.Register(PathMutateKernelPod, &crwebhook.Admission{Handler: admission.HandlerFunc(h.mutatePod)})
	srv.Register(PathValidateKernelPod, &crwebhook.Admission{Handler: admission.HandlerFunc(h.validatePod)})
	for _, kind := range []string{"jupyterkernelspec", "jupyterkerneltemplate", "jupytergateway", "jupyternotebook", "jupyterkernel"} {
		srv.Register(PathValidatePrefix+kind, &crwebhook.Admission{Handler: admission.HandlerFunc(h.validateCR)})
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	return mgr.AddReadyzCheck("webhook", srv.StartedChecker())
}
