package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	ejscheme "github.com/elastic-jupyter/elastic-jupyter/internal/scheme"
)

// KubernetesOptions configure the Kubernetes side of a gateway.
type KubernetesOptions struct {
	// Config reaches the API server.
	Config *rest.Config
	// Name and Namespace name the gateway's own JupyterGateway.
	Name, Namespace string
	// Log receives logs.
	Log *slog.Logger
	// ReportInterval is the least time between two activity writes to one kernel's status
	// (default 10s).
	ReportInterval time.Duration
}

// Kubernetes is a gateway's SettingsSource, SpecSource and Provisioner on Kubernetes: settings
// and kernelspecs come live from the gateway's JupyterGateway and the JupyterKernelSpecs it
// names; each kernel is a JupyterKernel in the kernel namespace, whose pod the controller
// creates (and the webhook fills with the launcher, GPUs and tolerations).
type Kubernetes struct {
	client   client.Client // reads from the cache, writes to the API server
	direct   client.Reader // reads Secrets, which the gateway may get but not list
	name, ns string
	kernelNs string
	log      *slog.Logger
	interval time.Duration

	mu   sync.Mutex
	last Settings // the settings of the last JupyterGateway seen

	reports reporter
	events  kernelEvents
	creds   *credentials // nil when the gateway takes no token
}

var _ Provisioner = (*Kubernetes)(nil)

// NewKubernetes connects to the API server and starts watching the gateway's JupyterGateway,
// its kernelspecs and its kernels; it returns once the caches are in sync.
func NewKubernetes(ctx context.Context, opts KubernetesOptions) (*Kubernetes, error) {
	if opts.Name == "" || opts.Namespace == "" {
		return nil, fmt.Errorf("the gateway's JupyterGateway name and namespace are required (--name, --namespace)")
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.ReportInterval <= 0 {
		opts.ReportInterval = 10 * time.Second
	}
	if opts.Config.QPS == 0 && opts.Config.Burst == 0 {
		// client-go's default of 5 a second queues a burst of starts behind each other (each
		// start is a create, then status writes); the kubelet's rate instead.
		opts.Config = rest.CopyConfig(opts.Config)
		opts.Config.QPS, opts.Config.Burst = 50, 100
	}
	scheme, err := ejscheme.New()
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server: %w", err)
	}
	direct, err := client.New(opts.Config, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to the API server: %w", err)
	}
	gw := &ejv1.JupyterGateway{}
	if err := direct.Get(ctx, types.NamespacedName{Namespace: opts.Namespace, Name: opts.Name}, gw); err != nil {
		return nil, fmt.Errorf("reading JupyterGateway %s/%s: %w", opts.Namespace, opts.Name, err)
	}
	kernelNs := gw.Spec.KernelNamespace
	if kernelNs == "" {
		kernelNs = opts.Namespace
	}
	byObject := map[client.Object]cache.ByObject{
		&ejv1.JupyterGateway{}: {
			Namespaces: map[string]cache.Config{opts.Namespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", opts.Name),
		},
		&ejv1.JupyterKernelSpec{}: {Namespaces: map[string]cache.Config{opts.Namespace: {}}},
		&ejv1.JupyterKernel{}: {
			Namespaces: map[string]cache.Config{kernelNs: {}},
			Label:      labels.SelectorFromSet(labels.Set{ejv1.LabelGateway: opts.Name}),
		},
	}
	watched := []client.Object{&ejv1.JupyterGateway{}, &ejv1.JupyterKernelSpec{}, &ejv1.JupyterKernel{}}
	authEnabled := gw.Spec.Auth == nil || gw.Spec.Auth.Mode != ejv1.ModeJupyterAuthDisable
	if authEnabled {
		// Its notebook servers' credentials: the one Secret of its namespace the gateway may read.
		byObject[&corev1.Secret{}] = cache.ByObject{
			Namespaces: map[string]cache.Config{opts.Namespace: {}},
			Field:      fields.OneTermEqualSelector("metadata.name", ejv1.GatewayCredentialsSecretName(opts.Name)),
		}
		watched = append(watched, &corev1.Secret{})
	}
	c, err := cache.New(opts.Config, cache.Options{Scheme: scheme, ByObject: byObject})
	if err != nil {
		return nil, fmt.Errorf("creating the cache: %w", err)
	}
	k := &Kubernetes{name: opts.Name, ns: opts.Namespace, kernelNs: kernelNs, log: opts.Log, interval: opts.ReportInterval, last: settingsOf(gw)}
	if authEnabled {
		k.creds = &credentials{}
	}
	// Ask for the informers now so that WaitForCacheSync covers them.
	for _, obj := range watched {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return nil, fmt.Errorf("watching %T: %w", obj, err)
		}
		var h toolscache.ResourceEventHandler
		switch obj.(type) {
		case *ejv1.JupyterKernel:
			h = k.events.handler()
		case *corev1.Secret:
			h = k.creds.handler()
		}
		if h != nil {
			if _, err := inf.AddEventHandler(h); err != nil {
				return nil, fmt.Errorf("watching %T: %w", obj, err)
			}
		}
	}
	go func() {
		if err := c.Start(ctx); err != nil {
			opts.Log.Error("the cache stopped", "err", err.Error())
		}
	}()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the caches did not sync: %w", ctx.Err())
	}
	cl, err := client.New(opts.Config, client.Options{Scheme: scheme, Cache: &client.CacheOptions{Reader: c}})
	if err != nil {
		return nil, err
	}
	k.client, k.direct = cl, direct
	k.reports.init()
	return k, nil
}

// KernelNamespace is where this gateway's kernels live.
func (k *Kubernetes) KernelNamespace() string { return k.kernelNs }

// gateway returns the gateway's JupyterGateway from the cache.
func (k *Kubernetes) gateway(ctx context.Context) (*ejv1.JupyterGateway, error) {
	gw := &ejv1.JupyterGateway{}
	if err := k.client.Get(ctx, types.NamespacedName{Namespace: k.ns, Name: k.name}, gw); err != nil {
		return nil, err
	}
	return gw, nil
}

// Settings implements SettingsSource: the JupyterGateway's current cull settings.
func (k *Kubernetes) Settings() Settings {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gw, err := k.gateway(ctx)
	k.mu.Lock()
	defer k.mu.Unlock()
	if err == nil {
		k.last = settingsOf(gw)
	}
	return k.last
}

// settingsOf converts a JupyterGateway's spec into Settings.
func settingsOf(gw *ejv1.JupyterGateway) Settings {
	s := Settings{
		CullConnected: cullConnected(gw.Spec.CullConnected, gw.Spec.CullPolicy),
		CullBusy:      gw.Spec.CullBusy,
		CullPolicy:    string(gw.Spec.CullPolicy),
		AllowedEnv:    gw.Spec.AllowedEnv,
	}
	if v := gw.Spec.CullIdleTimeout; v != nil {
		s.CullIdleTimeout = time.Duration(*v) * time.Second
	}
	if v := gw.Spec.CullInterval; v != nil {
		s.CullInterval = time.Duration(*v) * time.Second
	}
	if v := gw.Spec.LaunchTimeout; v != nil {
		s.LaunchTimeout = time.Duration(*v) * time.Second
	}
	return s
}

// cullConnected is the gateway's cullConnected: as set, else true for cullPolicy Suspend (a
// suspended kernel comes back with its variables) and false for Delete.
func cullConnected(set *bool, policy ejv1.CullPolicy) bool {
	if set != nil {
		return *set
	}
	return policy == ejv1.CullPolicySuspend
}

// List implements SpecSource: the JupyterKernelSpecs the gateway's spec.kernels names (all of
// its namespace when empty), read live.
func (k *Kubernetes) List(ctx context.Context) ([]KernelSpec, string, error) {
	gw, err := k.gateway(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("reading the gateway's JupyterGateway: %w", err)
	}
	list := &ejv1.JupyterKernelSpecList{}
	if err := k.client.List(ctx, list, client.InNamespace(k.ns)); err != nil {
		return nil, "", fmt.Errorf("listing kernelspecs: %w", err)
	}
	byName := map[string]*ejv1.JupyterKernelSpec{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	names := gw.Spec.Kernels
	if len(names) == 0 {
		for n := range byName {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	var specs []KernelSpec
	for _, n := range names {
		if s, ok := byName[n]; ok {
			specs = append(specs, kernelSpecOf(s))
		}
	}
	def := ""
	if gw.Spec.DefaultKernel != nil {
		def = *gw.Spec.DefaultKernel
	} else if len(specs) > 0 {
		def = specs[0].Name
	}
	return specs, def, nil
}

// kernelSpecOf converts a JupyterKernelSpec into the gateway's KernelSpec. Only literal env
// values are shown to clients; valueFrom stays in the pod.
func kernelSpecOf(s *ejv1.JupyterKernelSpec) KernelSpec {
	env := map[string]string{}
	for _, e := range s.Spec.Env {
		if e.ValueFrom == nil {
			env[e.Name] = e.Value
		}
	}
	ks := KernelSpec{
		Name: s.Name, DisplayName: s.Spec.DisplayName, Language: s.Spec.Language,
		Argv: s.Spec.Command, Env: env, InterruptMode: string(s.Spec.InterruptMode),
		AuthorizedUsers: s.Spec.AuthorizedUsers, UnauthorizedUsers: s.Spec.UnauthorizedUsers,
	}
	if l := s.Spec.Logo; l != nil {
		ks.Files = map[string][]byte{}
		if l.SVG != "" {
			ks.Files["logo-svg.svg"] = []byte(l.SVG)
		}
		if len(l.PNG64) > 0 {
			ks.Files["logo-64x64.png"] = l.PNG64
		}
	}
	if s.Spec.Metadata != nil {
		ks.Metadata = s.Spec.Metadata.Raw
	}
	return ks
}
