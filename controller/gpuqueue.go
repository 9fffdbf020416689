package controller

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// queueRecheck is how often a GPU queue with waiting pods is looked at again even when no
// kernel pod or node changed: pods the controller does not watch (other workloads) may have
// given GPUs back.
const queueRecheck = 15 * time.Second

// gpuQueue is what the GPU queue reconciler tells the kernel reconciler: where each waiting
// kernel pod stands. It is rebuilt from the cluster on every pass, so a restarted controller
// loses nothing.
type gpuQueue struct {
	mu    sync.Mutex
	slots map[string]queueEntry // pod namespace/name
	// kernels receives the kernels whose place in the queue changed, for the kernel
	// reconciler to report.
	kernels chan event.GenericEvent
}

type queueEntry struct {
	resource corev1.ResourceName
	kernel   types.NamespacedName // the JupyterKernel that owns the pod
	slot     queueSlot
}

func newGPUQueue() *gpuQueue {
	return &gpuQueue{slots: map[string]queueEntry{}, kernels: make(chan event.GenericEvent, 1024)}
}

// lookup returns where the pod stands, if it waits.
func (q *gpuQueue) lookup(pod string) (queueEntry, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.slots[pod]
	return e, ok
}

// update replaces the entries of one resource and returns the kernels whose entry changed.
func (q *gpuQueue) update(resource corev1.ResourceName, waiting map[string]queueEntry) []types.NamespacedName {
	q.mu.Lock()
	defer q.mu.Unlock()
	var changed []types.NamespacedName
	for key, e := range q.slots {
		if e.resource != resource {
			continue
		}
		if _, still := waiting[key]; !still {
			delete(q.slots, key)
			changed = append(changed, e.kernel)
		}
	}
	for key, e := range waiting {
		if old, ok := q.slots[key]; !ok || old != e {
			changed = append(changed, e.kernel)
		}
		q.slots[key] = e
	}
	return changed
}

// GPUQueueReconciler lets kernel pods that ask for GPUs reach the scheduler in the order they
// arrived, as GPUs come free. The webhook gates every such pod (ejv1.GPUQueueGate); for each
// GPU resource this reconciler removes the gates of the pods that fit now, first come first
// served, and tells the kernel reconciler where the others stand ("2 kernels ahead of you").
// The request's name is the resource name.
type GPUQueueReconciler struct {
	client.Client
	// APIReader lists the pods bound to GPU nodes, which the cache (kernel pods only) does
	// not hold.
	APIReader client.Reader
	// GPUResources are resource names counted as GPUs besides those containing "gpu".
	GPUResources []corev1.ResourceName
	// Disabled releases every gated pod at once, leaving the order to the scheduler.
	Disabled bool

	queue *gpuQueue
}

func (r *GPUQueueReconciler) setup(mgr manager.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("gpuqueue").
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.resourcesOfPod)).
		Watches(&corev1.Node{}, handler.EnqueueRequestsFromMapFunc(r.resourcesOfNode)).
		Complete(r)
}

func (r *GPUQueueReconciler) isGPU() func(corev1.ResourceName) bool {
	return gpuMatcher(r.GPUResources...)
}

func resourceRequests(names []corev1.ResourceName) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(names))
	for _, n := range names {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Name: string(n)}})
	}
	return reqs
}

// resourcesOfPod maps a kernel pod to the GPU resources it uses: a pod arriving, binding or
// ending moves that resource's queue.
func (r *GPUQueueReconciler) resourcesOfPod(_ context.Context, o client.Object) []reconcile.Request {
	pod, ok := o.(*corev1.Pod)
	if !ok || pod.Labels[ejv1.LabelComponent] != ejv1.ComponentKernel {
		return nil
	}
	return resourceRequests(podGPUResources(pod, r.isGPU()))
}

// resourcesOfNode maps a node to the GPU resources it offers.
func (r *GPUQueueReconciler) resourcesOfNode(_ context.Context, o client.Object) []reconcile.Request {
	node, ok := o.(*corev1.Node)
	if !ok {
		return nil
	}
	var names []corev1.ResourceName
	for name := range node.Status.Allocatable {
		if r.isGPU()(name) {
			names = append(names, name)
		}
	}
	return resourceRequests(names)
}

// Reconcile implements reconcile.Reconciler for one GPU resource.
func (r *GPUQueueReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	resource := corev1.ResourceName(req.Name)
	log := logf.FromContext(ctx).WithValues("resource", resource)
	pods := &corev1.PodList{}
	if err := r.List(ctx, pods, client.MatchingLabels{ejv1.LabelComponent: ejv1.ComponentKernel}); err != nil {
		return ctrl.Result{}, fmt.Errorf("listing kernel pods: %w", err)
	}
	var gated, inFlight []*corev1.Pod
	for i := range pods.Items {
		p := &pods.Items[i]
		if !p.DeletionTimestamp.IsZero() || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if podResource(p, resource) <= 0 {
			continue
		}
		switch {
		case hasGPUQueueGate(p):
			gated = append(gated, p)
		case p.Spec.NodeName == "":
			inFlight = append(inFlight, p)
		}
	}
	if len(gated) == 0 {
		r.report(resource, nil)
		return ctrl.Result{}, nil
	}
	var release []string
	var slots map[string]queueSlot
	if r.Disabled {
		for _, p := range gated {
			release = append(release, client.ObjectKeyFromObject(p).String())
		}
	} else {
		nodes, err := r.nodes(ctx, resource)
		if err != nil {
			return ctrl.Result{}, err
		}
		var queued []queuePod
		for _, p := range append(gated, inFlight...) {
			queued = append(queued, queuePod{
				key: client.ObjectKeyFromObject(p).String(), created: requestedAt(p),
				gpus: podResource(p, resource), eligible: eligibleNodes(p, nodes), gated: hasGPUQueueGate(p),
			})
		}
		release, slots = planQueue(queueNodes(nodes, resource), queued)
	}
	byKey := map[string]*corev1.Pod{}
	for _, p := range gated {
		byKey[client.ObjectKeyFromObject(p).String()] = p
	}
	waiting := map[string]queueEntry{}
	for key, slot := range slots {
		p := byKey[key]
		waiting[key] = queueEntry{resource: resource, slot: slot,
			kernel: types.NamespacedName{Namespace: p.Namespace, Name: p.Labels[ejv1.LabelKernelID]}}
	}
	for _, key := range release {
		p := byKey[key]
		if err := r.ungate(ctx, p); err != nil {
			return ctrl.Result{}, err
		}
		waited := time.Since(requestedAt(p))
		gpuWaitSeconds.WithLabelValues(p.Namespace, string(resource)).Observe(waited.Seconds())
		log.Info("released a kernel pod to the scheduler", "pod", key, "waited", waited.Round(time.Millisecond).String())
	}
	r.report(resource, waiting)
	if len(waiting) > 0 {
		return ctrl.Result{RequeueAfter: queueRecheck}, nil
	}
	return ctrl.Result{}, nil
}

// report records where the waiting pods stand and wakes the kernels whose place changed.
func (r *GPUQueueReconciler) report(resource corev1.ResourceName, waiting map[string]queueEntry) {
	for _, key := range r.queue.update(resource, waiting) {
		if key.Name == "" {
			continue
		}
		k := &ejv1.JupyterKernel{}
		k.Namespace, k.Name = key.Namespace, key.Name
		select {
		case r.queue.kernels <- event.GenericEvent{Object: k}:
		default: // the kernel reconciler is behind; the next pass reports again
		}
	}
}

// gpuNode is a node that offers the resource, with its used units.
type gpuNode struct {
	node *corev1.Node
	used int64
}

// nodes returns the schedulable nodes that offer the resource and what their pods use.
func (r *GPUQueueReconciler) nodes(ctx context.Context, resource corev1.ResourceName) ([]gpuNode, error) {
	list := &corev1.NodeList{}
	if err := r.List(ctx, list); err != nil {
		return nil, fmt.Errorf("listing nodes: %w", err)
	}
	var out []gpuNode
	for i := range list.Items {
		n := &list.Items[i]
		q, ok := n.Status.Allocatable[resource]
		if !ok || q.Value() <= 0 || n.Spec.Unschedulable {
			continue
		}
		used, err := r.usedOn(ctx, n.Name, resource)
		if err != nil {
			return nil, err
		}
		out = append(out, gpuNode{node: n, used: used})
	}
	return out, nil
}

// usedOn sums the units of the resource that the pods bound to a node hold (every pod, not
// only kernels: the scheduler counts them all).
func (r *GPUQueueReconciler) usedOn(ctx context.Context, node string, resource corev1.ResourceName) (int64, error) {
	pods := &corev1.PodList{}
	if err := r.APIReader.List(ctx, pods, client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("spec.nodeName", node)}); err != nil {
		return 0, fmt.Errorf("listing the pods of node %s: %w", node, err)
	}
	var used int64
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		used += podResource(p, resource)
	}
	return used, nil
}

// queueNodes converts the nodes for planQueue.
func queueNodes(nodes []gpuNode, resource corev1.ResourceName) []queueNode {
	out := make([]queueNode, 0, len(nodes))
	for _, n := range nodes {
		q := n.node.Status.Allocatable[resource]
		out = append(out, queueNode{name: n.node.Name, allocatable: q.Value(), used: n.used})
	}
	return out
}

// eligibleNodes are the nodes the pod may be scheduled on: its node selector and required
// node affinity match, and it tolerates the node's NoSchedule and NoExecute taints.
func eligibleNodes(pod *corev1.Pod, nodes []gpuNode) []string {
	affinity := nodeaffinity.GetRequiredNodeAffinity(pod)
	var out []string
	for _, n := range nodes {
		if ok, err := affinity.Match(n.node); err != nil || !ok {
			continue
		}
		if !toleratesTaints(pod, n.node) {
			continue
		}
		out = append(out, n.node.Name)
	}
	return out
}

func toleratesTaints(pod *corev1.Pod, node *corev1.Node) bool {
	for i := range node.Spec.Taints {
		t := &node.Spec.Taints[i]
		if t.Effect != corev1.TaintEffectNoSchedule && t.Effect != corev1.TaintEffectNoExecute {
			continue
		}
		if !slices.ContainsFunc(pod.Spec.Tolerations, func(tol corev1.Toleration) bool { return tol.ToleratesTaint(logr.Discard(), t, false) }) {
			return false
		}
	}
	return true
}

// ungate removes the queue's scheduling gate from a pod.
func (r *GPUQueueReconciler) ungate(ctx context.Context, pod *corev1.Pod) error {
	patched := pod.DeepCopy()
	patched.Spec.SchedulingGates = slices.DeleteFunc(patched.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool {
		return g.Name == ejv1.GPUQueueGate
	})
	if err := r.Patch(ctx, patched, client.MergeFromWithOptions(pod, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("releasing pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}

// requestedAt is when a kernel pod was asked for: the controller's annotation (nanoseconds),
// else its creation (seconds).
func requestedAt(pod *corev1.Pod) time.Time {
	if t, err := time.Parse(time.RFC3339Nano, pod.Annotations[ejv1.AnnotationRequestedAt]); err == nil {
		return t
	}
	return pod.CreationTimestamp.Time
}

func hasGPUQueueGate(pod *corev1.Pod) bool {
	return slices.ContainsFunc(pod.Spec.SchedulingGates, func(g corev1.PodSchedulingGate) bool { return g.Name == ejv1.GPUQueueGate })
}

// podResource is the number of units of a resource a pod holds: the sum of its containers'
// limits (requests where no limit is set), or the largest of an init container's when that
// is more, as the scheduler counts.
func podResource(pod *corev1.Pod, name corev1.ResourceName) int64 {
	of := func(c corev1.Container) int64 {
		if q, ok := c.Resources.Limits[name]; ok {
			return q.Value()
		}
		if q, ok := c.Resources.Requests[name]; ok {
			return q.Value()
		}
		return 0
	}
	var sum, initMax int64
	for _, c := range pod.Spec.Containers {
		sum += of(c)
	}
	for _, c := range pod.Spec.InitContainers {
		initMax = max(initMax, of(c))
	}
	return max(sum, initMax)
}

// podGPUResources are the GPU-like resources a pod asks for.
func podGPUResources(pod *corev1.Pod, isGPU func(corev1.ResourceName) bool) []corev1.ResourceName {
	var names []corev1.ResourceName
	for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range cs {
			for _, l := range []corev1.ResourceList{c.Resources.Limits, c.Resources.Requests} {
				for name, q := range l {
					if isGPU(name) && q.Value() > 0 && !slices.Contains(names, name) {
						names = append(names, name)
					}
				}
			}
		}
	}
	return names
}
