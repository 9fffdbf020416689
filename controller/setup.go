package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	ejscheme "github.com/elastic-jupyter/elastic-jupyter/internal/scheme"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

// The RBAC the controller needs; `make manifests` turns these markers into
// config/rbac/role.yaml (a ClusterRole, and a Role for the leader election Lease in the
// controller's namespace, written here as elastic-jupyter). The controller holds the
// JupyterKernel verbs and the Secret, event and read permissions it grants gateways, because
// creating a gateway's Role needs every permission the Role grants; and
// binding a gateway's spec.clusterRole needs every permission of that ClusterRole (the
// controller holds no "bind" verb): the API server's escalation check keeps a gateway from
// getting more than the controller has.
//
// +kubebuilder:rbac:groups=kubeflow.tkestack.io,resources=jupyternotebooks;jupyterkernelspecs;jupyterkerneltemplates,verbs=get;list;watch
// +kubebuilder:rbac:groups=kubeflow.tkestack.io,resources=jupytergateways,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=kubeflow.tkestack.io,resources=jupyterkernels,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=kubeflow.tkestack.io,resources=jupyternotebooks/status;jupytergateways/status;jupyterkernels/status;jupyterkernelspecs/status;jupyterkerneltemplates/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=kubeflow.tkestack.io,resources=jupytergateways/finalizers;jupyterkernels/finalizers;jupyternotebooks/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch;create;delete;patch
// +kubebuilder:rbac:groups="",resources=nodes,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=persistentvolumeclaims,verbs=get
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=services;serviceaccounts;configmaps,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;update;patch
// +kubebuilder:rbac:groups=rbac.authorization.k8s.io,resources=roles;rolebindings,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update,namespace=elastic-jupyter

// Defaults of Options.
const (
	// DefaultNotebookImage is the stock Jupyter image notebook servers run by default.
	DefaultNotebookImage = "quay.io/jupyter/base-notebook:2024-10-07"
	// LeaderElectionID names the Lease the controller's replicas compete for.
	LeaderElectionID = "elastic-jupyter-controller.kubeflow.tkestack.io"
	// EventSource is the name events of the controller are reported by.
	EventSource = "elastic-jupyter-controller"
)

// Options configure the reconcilers.
type Options struct {
	// GatewayImage is the image of gateways whose spec.image is empty (default
	// version.Image()).
	GatewayImage string
	// NotebookImage is the image of notebook servers whose template names none (default
	// DefaultNotebookImage).
	NotebookImage string
	// GPUResources are resource names counted as GPUs besides those containing "gpu" (MIG
	// profiles such as nvidia.com/mig-1g.10gb).
	GPUResources []corev1.ResourceName
	// NoGPUQueue releases kernel pods that wait for GPUs to the scheduler at once instead of
	// first come, first served (for clusters whose autoscaler must see every pending pod).
	NoGPUQueue bool
}

func (o Options) withDefaults() Options {
	if o.GatewayImage == "" {
		o.GatewayImage = version.Image()
	}
	if o.NotebookImage == "" {
		o.NotebookImage = DefaultNotebookImage
	}
	return o
}

// ManagerOptions are the settings of the controller's manager that NewManager needs.
type ManagerOptions struct {
	// MetricsAddr is where controller-runtime's metrics are served ("0" turns them off).
	MetricsAddr string
	// ProbeAddr is where /healthz and /readyz are served ("0" or "" turns them off).
	ProbeAddr string
	// LeaderElection makes replicas elect one active leader through a Lease.
	LeaderElection bool
	// LeaderElectionNamespace is the Lease's namespace (default: the pod's own).
	LeaderElectionNamespace string
}

// CacheOptions limit the controller's caches of Pods, Secrets, ConfigMaps and the objects it
// creates to those it manages (labelled app.kubernetes.io/managed-by=elastic-jupyter): the
// controller never holds the cluster's other Secrets in memory. Objects the user names (a
// notebook's token Secret) are read directly from the API server.
func CacheOptions() cache.Options {
	managed := cache.ByObject{Label: labels.SelectorFromSet(labels.Set{ejv1.LabelManagedBy: ejv1.ManagedBy})}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}:            managed,
		&corev1.Secret{}:         managed,
		&corev1.ConfigMap{}:      managed,
		&corev1.Service{}:        managed,
		&corev1.ServiceAccount{}: managed,
		&appsv1.Deployment{}:     managed,
		&rbacv1.Role{}:           managed,
		&rbacv1.RoleBinding{}:    managed,
	}}
}

// NewManager returns a manager for the controllers, with CacheOptions, health and readiness
// probes, controller-runtime's metrics and, if asked, leader election.
func NewManager(cfg *rest.Config, mo ManagerOptions) (manager.Manager, error) {
	probe := mo.ProbeAddr
	if probe == "" {
		probe = "0"
	}
	if cfg.QPS == 0 {
		// As controller-runtime's GetConfig does: no client-side throttling (client-go's
		// default of 5 requests a second would queue kernel starts); the API server's
		// priority and fairness limits the controller instead.
		cfg = rest.CopyConfig(cfg)
		cfg.QPS = -1
	}
	scheme, err := ejscheme.New()
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                        scheme,
		Cache:                         CacheOptions(),
		Metrics:                       metricsserver.Options{BindAddress: mo.MetricsAddr},
		HealthProbeBindAddress:        probe,
		LeaderElection:                mo.LeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       mo.LeaderElectionNamespace,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("readyz", func(req *http.Request) error {
		if !mgr.GetCache().WaitForCacheSync(req.Context()) {
			return errors.New("caches are not synced")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return mgr, nil
}

// Field indexes the reconcilers look objects up by.
const (
	indexKernelSpec      = "spec.kernelSpec" // JupyterKernel: "<ns>/<name>" of its kernelspec
	indexTemplate        = "spec.template"   // JupyterKernelSpec: "<ns>/<name>" of its template
	indexNotebookGateway = "spec.gateway"    // JupyterNotebook: "<ns>/<name>" of its gateway
)

// SetupWithManager adds the reconcilers of the five kinds and the GPU queue, and the field indexes they use, to mgr.
func SetupWithManager(mgr manager.Manager, opts Options) error {
	opts = opts.withDefaults()
	ctx := context.Background()
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &ejv1.JupyterKernel{}, indexKernelSpec, func(o client.Object) []string {
		k := o.(*ejv1.JupyterKernel)
		if k.Spec.KernelSpec == nil || k.Spec.KernelSpec.Name == "" {
			return nil
		}
		return []string{kernelSpecKey(k).String()}
	}); err != nil {
		return fmt.Errorf("indexing kernels by kernelspec: %w", err)
	}
	if err := idx.IndexField(ctx, &ejv1.JupyterKernelSpec{}, indexTemplate, func(o client.Object) []string {
		ks := o.(*ejv1.JupyterKernelSpec)
		if ks.Spec.Template == nil || ks.Spec.Template.Name == "" {
			return nil
		}
		return []string{templateKey(ks).String()}
	}); err != nil {
		return fmt.Errorf("indexing kernelspecs by template: %w", err)
	}
	if err := idx.IndexField(ctx, &ejv1.JupyterNotebook{}, indexNotebookGateway, func(o client.Object) []string {
		nb := o.(*ejv1.JupyterNotebook)
		if nb.Spec.Gateway == nil || nb.Spec.Gateway.Name == "" {
			return nil
		}
		return []string{notebookGatewayKey(nb).String()}
	}); err != nil {
		return fmt.Errorf("indexing notebooks by gateway: %w", err)
	}

	rec := mgr.GetEventRecorder(EventSource)
	queue := newGPUQueue()
	accounting := newGPUAccounting(mgr.GetClient(), mgr.GetLogger().WithName("accounting"))
	if err := mgr.Add(accounting); err != nil {
		return err
	}
	reconcilers := []interface{ setup(manager.Manager) error }{
		&KernelReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, GPUResources: opts.GPUResources, LauncherImage: opts.GatewayImage, queue: queue},
		&GPUQueueReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), GPUResources: opts.GPUResources, Disabled: opts.NoGPUQueue, queue: queue},
		&GatewayReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, Image: opts.GatewayImage, accounting: accounting},
		&NotebookReconciler{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: rec, Image: opts.NotebookImage},
		&KernelSpecReconciler{Client: mgr.GetClient()},
		&KernelTemplateReconciler{Client: mgr.GetClient()},
	}
	for _, r := range reconcilers {
		if err := r.setup(mgr); err != nil {
			return err
		}
	}
	return nil
}
