package start

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// step is a moment in a kernel's start that the watches see.
type step int

const (
	stepKernel    step = iota // the JupyterKernel exists (the gateway created it)
	stepPod                   // the pod exists (the controller created it, the webhook mutated it)
	stepScheduled             // the pod has a node (kube-scheduler bound it)
	stepSandbox               // the pod has an IP (devnode set up its sandbox; the init container starts)
	stepInitDone              // the init container (kernel-launcher install) exited 0
	stepRunning               // the kernel container runs (devnode started the launcher and kernel)
	stepKernelIP              // the JupyterKernel's status has the pod IP (the controller mirrored it): the gateway probes from here
	stepReady                 // the pod is Ready (the launcher's readiness probe passed)
	numSteps
)

var stepNames = [numSteps]string{
	stepKernel:    "JupyterKernel created (gateway)",
	stepPod:       "pod created (controller, webhook)",
	stepScheduled: "pod scheduled (kube-scheduler)",
	stepSandbox:   "pod IP, init container (devnode)",
	stepInitDone:  "init container done (devnode)",
	stepRunning:   "kernel container running (devnode)",
	stepKernelIP:  "JupyterKernel status.podIP (controller)",
	stepReady:     "pod Ready (readiness probe)",
}

// timeline is when the watches first saw each step of one kernel.
type timeline struct {
	at          [numSteps]time.Time
	pod, kernel bool // exist now
}

// tracker watches the kernel pods and JupyterKernels of a namespace and records, per kernel
// id, when each step was first seen.
type tracker struct {
	mu      sync.Mutex
	kernels map[string]*timeline
	changed chan struct{} // closed and replaced at every change
}

func startTracker(ctx context.Context, kube kubernetes.Interface, dyn dynamic.Interface, namespace string) (*tracker, error) {
	t := &tracker{kernels: map[string]*timeline{}, changed: make(chan struct{})}
	pods := informers.NewSharedInformerFactoryWithOptions(kube, 0, informers.WithNamespace(namespace))
	podInf := pods.Core().V1().Pods().Informer()
	if _, err := podInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.pod(o, false) },
		UpdateFunc: func(_, o any) { t.pod(o, false) },
		DeleteFunc: func(o any) { t.pod(o, true) },
	}); err != nil {
		return nil, err
	}
	crs := dynamicinformer.NewFilteredDynamicSharedInformerFactory(dyn, 0, namespace, nil)
	kInf := crs.ForResource(ejv1.GroupVersion.WithResource("jupyterkernels")).Informer()
	if _, err := kInf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.kernel(o, false) },
		UpdateFunc: func(_, o any) { t.kernel(o, false) },
		DeleteFunc: func(o any) { t.kernel(o, true) },
	}); err != nil {
		return nil, err
	}
	pods.Start(ctx.Done())
	crs.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInf.HasSynced, kInf.HasSynced) {
		return nil, fmt.Errorf("the watches of pods and JupyterKernels did not sync")
	}
	return t, nil
}

// entry returns id's timeline; t.mu must be held.
func (t *tracker) entry(id string) *timeline {
	tl := t.kernels[id]
	if tl == nil {
		tl = &timeline{}
		t.kernels[id] = tl
	}
	return tl
}

func (t *tracker) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}

func (tl *timeline) mark(s step, now time.Time) bool {
	if tl.at[s].IsZero() {
		tl.at[s] = now
		return true
	}
	return false
}

func (t *tracker) pod(o any, deleted bool) {
	now := time.Now()
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	pod, ok := o.(*corev1.Pod)
	if !ok || pod.Labels[ejv1.LabelComponent] != ejv1.ComponentKernel {
		return
	}
	id := pod.Labels[kernelLabel]
	t.mu.Lock()
	defer t.mu.Unlock()
	tl := t.entry(id)
	if deleted {
		tl.pod = false
		t.notifyLocked()
		return
	}
	tl.pod = true
	changed := tl.mark(stepPod, now)
	if pod.Spec.NodeName != "" {
		changed = tl.mark(stepScheduled, now) || changed
	}
	if pod.Status.PodIP != "" {
		changed = tl.mark(stepSandbox, now) || changed
	}
	inits := len(pod.Status.InitContainerStatuses) > 0
	for _, cs := range pod.Status.InitContainerStatuses {
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			inits = false
		}
	}
	if inits {
		changed = tl.mark(stepInitDone, now) || changed
	}
	for _, cs := range pod.Status.ContainerStatuses {
		if cs.Name == "kernel" && cs.State.Running != nil {
			changed = tl.mark(stepRunning, now) || changed
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			changed = tl.mark(stepReady, now) || changed
		}
	}
	if changed {
		t.notifyLocked()
	}
}

func (t *tracker) kernel(o any, deleted bool) {
	now := time.Now()
	if d, ok := o.(cache.DeletedFinalStateUnknown); ok {
		o = d.Obj
	}
	u, ok := o.(*unstructured.Unstructured)
	if !ok {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	tl := t.entry(u.GetName())
	if deleted {
		tl.kernel = false
		t.notifyLocked()
		return
	}
	tl.kernel = true
	changed := tl.mark(stepKernel, now)
	if ip, _, _ := unstructured.NestedString(u.Object, "status", "podIP"); ip != "" {
		changed = tl.mark(stepKernelIP, now) || changed
	}
	if changed {
		t.notifyLocked()
	}
}

// timeline returns a copy of id's timeline.
func (t *tracker) timeline(id string) timeline {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tl := t.kernels[id]; tl != nil {
		return *tl
	}
	return timeline{}
}

// waitFor waits until ok holds for id's timeline.
func (t *tracker) waitFor(ctx context.Context, id string, ok func(timeline) bool) error {
	for {
		t.mu.Lock()
		tl, ch := timeline{}, t.changed
		if e := t.kernels[id]; e != nil {
			tl = *e
		}
		t.mu.Unlock()
		if ok(tl) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

// podIP waits for the IP of id's pod.
func (t *tracker) podIP(ctx context.Context, kube kubernetes.Interface, namespace, id string) (string, error) {
	if err := t.waitFor(ctx, id, func(tl timeline) bool { return !tl.at[stepSandbox].IsZero() }); err != nil {
		return "", err
	}
	pods, err := kube.CoreV1().Pods(namespace).List(ctx, listByKernel(id))
	if err != nil {
		return "", err
	}
	for _, p := range pods.Items {
		if p.Status.PodIP != "" {
			return p.Status.PodIP, nil
		}
	}
	return "", fmt.Errorf("kernel %s: no pod with an IP", id)
}

// waitGone waits until none of the kernels has a JupyterKernel or a pod, and forgets them.
func (t *tracker) waitGone(ctx context.Context, ids []string) error {
	for {
		t.mu.Lock()
		left, ch := 0, t.changed
		for _, id := range ids {
			if tl := t.kernels[id]; tl != nil && (tl.pod || tl.kernel) {
				left++
			}
		}
		if left == 0 {
			for _, id := range ids {
				delete(t.kernels, id)
			}
		}
		t.mu.Unlock()
		if left == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d kernels still have a JupyterKernel or pod: %w", left, len(ids), ctx.Err())
		case <-ch:
		}
	}
}
