package devnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

// Agent is a devnode: it registers a Node and runs the pods bound to it as local processes.
type Agent struct {
	opts   Options
	log    *slog.Logger
	client kubernetes.Interface

	spawner  *spawner
	podIPs   *addrPool
	network  *hostNetwork
	gpus     *gpuPool
	services *serviceTable

	nodeUID        types.UID
	kubeletVersion string
	apiHost        string

	mu       sync.Mutex
	workers  map[types.UID]*podWorker
	finished map[types.UID]bool
	stopping bool
	wg       sync.WaitGroup
	ready    chan struct{}
}

// New returns an agent for the API server cfg points at; Options are checked here, and the
// error names the first bad one.
func New(cfg *rest.Config, opts Options) (*Agent, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = opts.KubeAPIQPS, opts.KubeAPIBurst
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the Kubernetes client: %w", err)
	}
	a := &Agent{
		opts: opts, log: opts.Log.With("node", opts.NodeName), client: client, apiHost: cfg.Host,
		gpus:    newGPUPool(opts.NodeName, opts.GPUResources, opts.GPUs),
		workers: map[types.UID]*podWorker{}, finished: map[types.UID]bool{},
		ready: make(chan struct{}),
	}
	return a, nil
}

// Ready is closed once the node is registered and the agent runs pods.
func (a *Agent) Ready() <-chan struct{} { return a.ready }

// NodeName is the name of the agent's Node.
func (a *Agent) NodeName() string { return a.opts.NodeName }

// Root is the agent's root directory (see PodDir, LogPath, LookupService).
func (a *Agent) Root() string { return a.opts.Root }

// ServiceAddress returns the address ("10.96.x.y:port") at which the agent proxies
// port of Service namespace/name.
func (a *Agent) ServiceAddress(namespace, name string, port int32) (string, bool) {
	if a.services == nil {
		return "", false
	}
	return a.services.address(namespace, name, port)
}

// Run registers the node and runs its pods until ctx ends. It first kills whatever a
// previous devnode with the same root left running. When it returns, every container it
// started has stopped (SIGTERM, then SIGKILL after Options.ShutdownGracePeriod) and the node
// reports NotReady; the pods stay bound, and the next devnode restarts them per their
// restart policy. Run may be called once.
func (a *Agent) Run(ctx context.Context) error {
	o := a.opts
	if os.Geteuid() != 0 {
		return errors.New("devnode needs root: it mounts overlays, creates namespaces and switches users; run it as root")
	}
	if err := os.MkdirAll(filepath.Join(o.Root, podsDirName), 0o700); err != nil {
		return fmt.Errorf("creating the root directory %s: %w", o.Root, err)
	}
	if err := os.Chmod(o.Root, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(o.Root, podsDirName), 0o700); err != nil {
		return err
	}
	lock, err := os.OpenFile(filepath.Join(o.Root, rootLockName), os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("another devnode is using the root directory %s: stop it or give this one another --root", o.Root)
	}
	if a.podIPs, err = newAddrPool("pod", o.PodNetwork, o.LockDir); err != nil {
		return err
	}
	defer a.podIPs.close()
	svcIPs, err := newAddrPool("service", o.ServiceNetwork, o.LockDir)
	if err != nil {
		return err
	}
	defer svcIPs.close()
	if a.network, err = newHostNetwork(o, a.apiHost, a.log); err != nil {
		return err
	}
	a.killLeftovers()
	if a.spawner, err = newSpawner(); err != nil {
		return err
	}
	defer a.spawner.stop()
	if v, err := a.client.Discovery().ServerVersion(); err == nil {
		a.kubeletVersion = v.GitVersion
	}
	if err := a.registerNode(ctx); err != nil {
		return fmt.Errorf("registering node %s: %w", o.NodeName, err)
	}
	if err := a.reportStatus(ctx, true, ""); err != nil {
		return fmt.Errorf("reporting the status of node %s: %w", o.NodeName, err)
	}
	if err := a.renewLease(ctx); err != nil {
		return fmt.Errorf("creating the lease of node %s: %w", o.NodeName, err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.reportStatus(sctx, false, "devnode stopped"); err != nil {
			a.log.Error("reporting NotReady", "err", err)
		}
	}()

	informerCtx, stopInformers := context.WithCancel(context.Background())
	defer stopInformers()
	podFactory := informers.NewSharedInformerFactoryWithOptions(a.client, 0, informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
		lo.FieldSelector = "spec.nodeName=" + o.NodeName
	}))
	factory := informers.NewSharedInformerFactory(a.client, 0)
	slices := factory.Discovery().V1().EndpointSlices()
	allPods := factory.Core().V1().Pods()
	a.services = &serviceTable{root: o.Root, pool: svcIPs, pods: allPods.Lister(), slices: slices.Lister(), log: a.log, changed: a.refreshHosts, entries: map[types.NamespacedName]*serviceEntry{}}
	defer a.services.close()
	svcInformer := factory.Core().V1().Services().Informer()
	_, _ = svcInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.services.upsert(obj.(*corev1.Service)) },
		UpdateFunc: func(_, obj any) { a.services.upsert(obj.(*corev1.Service)) },
		DeleteFunc: func(obj any) {
			if s, ok := tombstone[*corev1.Service](obj); ok {
				a.services.remove(types.NamespacedName{Namespace: s.Namespace, Name: s.Name})
			}
		},
	})
	_ = slices.Informer()
	_ = allPods.Informer()
	podInformer := podFactory.Core().V1().Pods().Informer()
	workerCtx, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	_, _ = podInformer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { a.podEvent(workerCtx, obj.(*corev1.Pod), false) },
		UpdateFunc: func(_, obj any) { a.podEvent(workerCtx, obj.(*corev1.Pod), false) },
		DeleteFunc: func(obj any) {
			if p, ok := tombstone[*corev1.Pod](obj); ok {
				a.podEvent(workerCtx, p, true)
			}
		},
	})
	factory.Start(informerCtx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("syncing the %v cache: %w", typ, ctx.Err())
		}
	}
	podFactory.Start(informerCtx.Done())
	for typ, ok := range podFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("syncing the %v cache: %w", typ, ctx.Err())
		}
	}
	a.removeStaleDirs(podInformer.GetStore())
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	defer stopHeartbeat()
	go a.heartbeat(hbCtx)
	a.log.Info("devnode ready", "root", o.Root, "gpus", o.GPUs, "taints", len(o.Taints))
	close(a.ready)

	<-ctx.Done()
	a.log.Info("devnode stopping")
	stopHeartbeat()
	stopInformers()
	a.mu.Lock()
	a.stopping = true
	a.mu.Unlock()
	stopWorkers()
	a.wg.Wait()
	return nil
}

// tombstone unwraps a deleted object.
func tombstone[T any](obj any) (T, bool) {
	if t, ok := obj.(T); ok {
		return t, true
	}
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		t, ok := d.Obj.(T)
		return t, ok
	}
	var zero T
	return zero, false
}

// podEvent hands a pod to its worker, starting one for a pod newly bound to the node.
func (a *Agent) podEvent(ctx context.Context, pod *corev1.Pod, deleted bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.workers[pod.UID]
	if deleted {
		delete(a.finished, pod.UID)
		if w != nil {
			w.update(nil)
		}
		return
	}
	if w != nil {
		w.update(pod)
		return
	}
	if a.stopping || a.finished[pod.UID] || pod.Spec.NodeName != a.opts.NodeName {
		return
	}
	w = newPodWorker(ctx, a, pod)
	a.workers[pod.UID] = w
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		w.run()
		a.mu.Lock()
		delete(a.workers, w.uid)
		if ctx.Err() == nil {
			w.mu.Lock()
			if w.pod != nil {
				a.finished[w.uid] = true
			}
			w.mu.Unlock()
		}
		a.mu.Unlock()
	}()
}

// gpuReleased pokes every worker, so a container waiting for devices tries again. It may
// be called with a worker's lock held, so it takes the agent's lock on its own goroutine
// (the lock order is agent, then worker).
func (a *Agent) gpuReleased() {
	go func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for _, w := range a.workers {
			w.poke()
		}
	}()
}

// refreshHosts rewrites every pod's hosts file after the Services changed.
func (a *Agent) refreshHosts() {
	a.mu.Lock()
	ws := make([]*podWorker, 0, len(a.workers))
	for _, w := range a.workers {
		ws = append(ws, w)
	}
	a.mu.Unlock()
	for _, w := range ws {
		w.mu.Lock()
		if w.sandbox {
			if err := w.writeHostsLocked(); err != nil {
				w.log.Error("writing the hosts file", "err", err)
			}
		}
		w.mu.Unlock()
	}
}

// killLeftovers kills every process still running in a container of a previous devnode
// with this root: devnode never adopts processes, it restarts pods per their policy.
func (a *Agent) killLeftovers() {
	for dir, pids := range ContainerProcesses(a.opts.Root) {
		a.log.Info("killing processes left by a previous devnode", "container", dir, "pids", pids)
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	// The kernel is reaping them.
	if wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 2*time.Second, true, func(context.Context) (bool, error) {
		return len(ContainerProcesses(a.opts.Root)) == 0, nil
	}) == nil {
		return
	}
	a.log.Error("processes of a previous devnode survived SIGKILL", "left", ContainerProcesses(a.opts.Root))
}

// removeStaleDirs removes the directories of pods no longer bound to the node.
func (a *Agent) removeStaleDirs(store cache.Store) {
	live := map[string]bool{}
	for _, obj := range store.List() {
		p := obj.(*corev1.Pod)
		live[filepath.Base(PodDir(a.opts.Root, p.Namespace, p.Name, p.UID))] = true
	}
	entries, err := os.ReadDir(filepath.Join(a.opts.Root, podsDirName))
	if err != nil {
		return
	}
	for _, e := range entries {
		if !live[e.Name()] {
			_ = os.RemoveAll(filepath.Join(a.opts.Root, podsDirName, e.Name()))
		}
	}
}

// serviceEnv is the environment every container gets: where the Kubernetes API is. It is
// the API server devnode itself talks to, so the server certificate matches what in-cluster
// clients dial.
func (a *Agent) serviceEnv() map[string]string {
	host, port, ok := apiHostPort(a.apiHost)
	if !ok {
		return nil
	}
	return map[string]string{
		"KUBERNETES_SERVICE_HOST":       host,
		"KUBERNETES_SERVICE_PORT":       port,
		"KUBERNETES_SERVICE_PORT_HTTPS": port,
	}
}

// apiHostPort is the host and port of the API server URL apiHost (port 443 when it names none).
func apiHostPort(apiHost string) (host, port string, ok bool) {
	u, err := url.Parse(apiHost)
	if err != nil || u.Hostname() == "" {
		return "", "", false
	}
	if port = u.Port(); port == "" {
		port = "443"
	}
	return u.Hostname(), port, true
}

func (a *Agent) secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	return a.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (a *Agent) configMap(ctx context.Context, namespace, name string) (*corev1.ConfigMap, error) {
	return a.client.CoreV1().ConfigMaps(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (a *Agent) persistentVolumeClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error) {
	return a.client.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (a *Agent) persistentVolume(ctx context.Context, name string) (*corev1.PersistentVolume, error) {
	return a.client.CoreV1().PersistentVolumes().Get(ctx, name, metav1.GetOptions{})
}

// token requests a service account token bound to the pod (TokenRequest API).
func (a *Agent) token(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: src.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if src.Audience != "" {
		req.Spec.Audiences = []string{src.Audience}
	}
	if req.Spec.ExpirationSeconds == nil {
		req.Spec.ExpirationSeconds = ptr.To[int64](3600)
	}
	tr, err := a.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
