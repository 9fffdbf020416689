package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// KernelReconciler runs each JupyterKernel as a connection Secret and a Pod and mirrors the
// pod into the kernel's status. It writes only the status fields it owns (never the
// gateway's lastActivity, executionState and connections).
type KernelReconciler struct {
	client.Client
	// APIReader reads from the API server directly, to confirm what the cache may not have
	// seen yet.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// GPUResources are resource names counted as GPUs besides those containing "gpu".
	GPUResources []corev1.ResourceName
	// LauncherImage is the image whose kernel-launcher removes the saved variables of deleted
	// kernels.
	LauncherImage string

	// queue tells where kernel pods waiting for GPUs stand, and which kernels to look at
	// again when that changes.
	queue *gpuQueue
	// now is the clock (tests set it).
	now func() time.Time
}

func (r *KernelReconciler) setup(mgr manager.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("jupyterkernel").
		// Status writes (the gateway's activity, this controller's own) do not change the
		// generation and need no reconcile.
		For(&ejv1.JupyterKernel{}, builder.WithPredicates(specOrLabelsChanged)).
		Owns(&corev1.Pod{}).
		Owns(&corev1.Secret{}).
		Watches(&ejv1.JupyterKernelSpec{}, handler.EnqueueRequestsFromMapFunc(r.kernelsOfSpec)).
		Watches(&ejv1.JupyterKernelTemplate{}, handler.EnqueueRequestsFromMapFunc(r.kernelsOfTemplate)).
		WatchesRawSource(source.Channel(r.queue.kernels, &handler.EnqueueRequestForObject{})).
		Complete(r)
}

func (r *KernelReconciler) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// Reconcile implements reconcile.Reconciler.
func (r *KernelReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	k := &ejv1.JupyterKernel{}
	if err := r.Get(ctx, req.NamespacedName, k); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !k.DeletionTimestamp.IsZero() {
		return r.removeState(ctx, k)
	}
	orig := k.DeepCopy()
	res, err := r.reconcile(ctx, k, orig)
	if perr := r.persist(ctx, k, orig); perr != nil {
		err = errors.Join(err, perr)
	}
	return finish(res, err)
}

// persist writes the kernel's status if it changed since orig (then orig is the written
// kernel) and reports the transition. A pod is deleted (suspension, image pull failure) only
// after the reason is persisted, so the next reconcile never takes the missing pod for one
// someone else deleted.
func (r *KernelReconciler) persist(ctx context.Context, k, orig *ejv1.JupyterKernel) error {
	k.Status.ObservedGeneration = k.Generation
	setCondition(&k.Status.Conditions, k.Generation, ejv1.ConditionReady, k.Status.Phase == ejv1.KernelRunning, nonEmpty(k.Status.Reason, "Unknown"), k.Status.Message)
	changed, err := patchStatus(ctx, r.Client, k, orig, func(o client.Object) any { return o.(*ejv1.JupyterKernel).Status })
	if err != nil {
		return err
	}
	if changed {
		r.recordTransition(orig, k)
		*orig = *k.DeepCopy()
	}
	return nil
}

func (r *KernelReconciler) reconcile(ctx context.Context, k, orig *ejv1.JupyterKernel) (ctrl.Result, error) {
	podName := k.Status.Pod
	if podName == "" {
		podName = kernelPodName(k.Spec.User, k.Name)
	}
	pod := &corev1.Pod{}
	err := r.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: podName}, pod)
	switch {
	case apierrors.IsNotFound(err):
		pod = nil
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading pod %s: %w", podName, err)
	case !ownedBy(pod, k):
		setStatus(k, ejv1.KernelPending, ReasonConflict, fmt.Sprintf("a pod named %s exists and does not belong to this kernel: delete it, or give the kernel another user or name", podName))
		return ctrl.Result{}, nil
	}

	if k.Spec.Suspend {
		return r.suspend(ctx, k, orig, pod)
	}
	if pod != nil && k.Status.Phase == ejv1.KernelSuspended && pod.DeletionTimestamp.IsZero() {
		// Resumed right after a suspension: the cache may not have seen the old pod's
		// deletion yet. Ask the API server.
		live := &corev1.Pod{}
		err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(pod), live)
		switch {
		case apierrors.IsNotFound(err):
			pod = nil
		case err != nil:
			return ctrl.Result{}, fmt.Errorf("reading pod %s: %w", pod.Name, err)
		default:
			pod = live
		}
	}
	if pod != nil && !pod.DeletionTimestamp.IsZero() && k.Status.Phase == ejv1.KernelSuspended {
		// Resumed before the old pod is gone: the fresh pod comes once it is (its deletion
		// is watched).
		k.Status.Message = "resuming: waiting for the previous pod to terminate"
		k.Status.GPUs = podGPUs(pod, r.isGPU(ctx, pod))
		return ctrl.Result{}, nil
	}
	if pod != nil {
		return r.mirror(ctx, k, orig, pod)
	}
	return r.createPod(ctx, k)
}

// ensureSecret makes sure the kernel's connection Secret exists and is its own. done is true
// when the reconcile cannot go on.
func (r *KernelReconciler) ensureSecret(ctx context.Context, k *ejv1.JupyterKernel) (ctrl.Result, error, bool) {
	name := ejv1.ConnectionSecretName(k.Name)
	key := types.NamespacedName{Namespace: k.Namespace, Name: name}
	s := &corev1.Secret{}
	err := r.Get(ctx, key, s)
	if apierrors.IsNotFound(err) {
		conn, cerr := newConnection(kernelName(k))
		if cerr != nil {
			return ctrl.Result{}, cerr, true
		}
		desired, cerr := desiredConnectionSecret(k, conn)
		if cerr != nil {
			return ctrl.Result{}, cerr, true
		}
		if cerr := controllerutil.SetControllerReference(k, desired, r.Scheme()); cerr != nil {
			return ctrl.Result{}, cerr, true
		}
		err = r.Create(ctx, desired, client.FieldOwner(FieldOwner))
		if err == nil {
			logf.FromContext(ctx).Info("created the kernel's connection secret", "secret", name)
			return ctrl.Result{}, nil, false
		}
		if !apierrors.IsAlreadyExists(err) {
			return ctrl.Result{}, fmt.Errorf("creating secret %s: %w", name, err), true
		}
		// Someone else's, or not in the cache yet: look at the API server.
		err = r.APIReader.Get(ctx, key, s)
	}
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("reading secret %s: %w", name, err), true
	}
	if ownedBy(s, k) {
		return ctrl.Result{}, nil, false
	}
	if ref := metav1.GetControllerOf(s); ref != nil && ref.Kind == "JupyterKernel" && ref.Name == k.Name {
		// Left by an earlier kernel of the same name: the garbage collector is about to
		// remove it; never reuse its key.
		if err := r.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("deleting the stale secret %s: %w", name, err), true
		}
		return ctrl.Result{RequeueAfter: time.Second}, nil, true
	}
	setStatus(k, ejv1.KernelPending, ReasonConflict, fmt.Sprintf("a secret named %s exists and does not belong to this kernel: delete it or rename the kernel", name))
	return ctrl.Result{}, nil, true
}

// suspend deletes the pod and keeps the Secret. The status records when, and how many GPUs
// the kernel gave back.
func (r *KernelReconciler) suspend(ctx context.Context, k, orig *ejv1.JupyterKernel, pod *corev1.Pod) (ctrl.Result, error) {
	if orig.Status.Phase != ejv1.KernelSuspended {
		k.Status.SuspendedAt = &metav1.Time{Time: r.clock()}
		k.Status.SuspendedGPUs = orig.Status.GPUs
		if isTerminal(orig.Status.Phase) {
			k.Status.SuspendedGPUs = 0 // a failed kernel's pod held nothing
		}
	}
	k.Status.PodIP, k.Status.StartTime, k.Status.CompletionTime, k.Status.GPUs = "", nil, nil, 0
	if pod == nil {
		k.Status.Pod = ""
		setStatus(k, ejv1.KernelSuspended, ReasonSuspended, "suspended: the pod is deleted and its resources are free; set spec.suspend to false to resume")
		return ctrl.Result{}, nil
	}
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		k.Status.GPUs = podGPUs(pod, r.isGPU(ctx, pod))
	}
	k.Status.Pod = pod.Name
	setStatus(k, ejv1.KernelSuspended, ReasonSuspended, "suspending: the pod is terminating")
	if pod.DeletionTimestamp.IsZero() {
		if err := r.persist(ctx, k, orig); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("deleting pod %s: %w", pod.Name, err)
		}
		logf.FromContext(ctx).Info("suspended the kernel: deleted its pod", "pod", pod.Name)
	}
	return ctrl.Result{}, nil
}

// mirror reports the pod in the kernel's status: where it stands in the GPU queue while it
// waits there, and a failure once it passes its start deadline. A kernel that failed before
// it ran (its image cannot be pulled or run, its deadline passed) has its pod deleted, so it
// holds no node resources (a GPU) for nothing.
func (r *KernelReconciler) mirror(ctx context.Context, k, orig *ejv1.JupyterKernel, pod *corev1.Pod) (ctrl.Result, error) {
	rep := reportPod(pod, r.isGPU(ctx, pod))
	k.Status.QueuePosition = 0
	if hasGPUQueueGate(pod) && rep.Phase == ejv1.KernelPending {
		rep.Reason, rep.Message = ReasonQueued, "waiting for a GPU: in the queue"
		if e, ok := r.queue.lookup(client.ObjectKeyFromObject(pod).String()); ok {
			rep.Message = queueMessage(e.resource, e.slot)
			k.Status.QueuePosition = int32(e.slot.ahead)
		}
	}
	var requeue time.Duration
	if d := k.Spec.StartDeadlineSeconds; d != nil && (rep.Phase == ejv1.KernelPending || rep.Phase == ejv1.KernelStarting) && pod.DeletionTimestamp.IsZero() {
		left := pod.CreationTimestamp.Add(time.Duration(*d) * time.Second).Sub(r.clock())
		if left <= 0 {
			rep.Phase, rep.Reason, rep.Message = ejv1.KernelFailed, ReasonStartDeadline, startDeadlineMessage(*d, rep)
			rep.PodIP = ""
			k.Status.QueuePosition = 0
		} else {
			requeue = left
		}
	}
	if isTerminal(k.Status.Phase) && k.Status.Pod == pod.Name && !pod.DeletionTimestamp.IsZero() {
		// A failed kernel's pod on its way out: the failure stays reported.
		k.Status.GPUs, k.Status.PodIP = rep.GPUs, ""
		return ctrl.Result{}, nil
	}
	k.Status.Pod = pod.Name
	k.Status.PodIP = rep.PodIP
	k.Status.StartTime = rep.StartTime
	k.Status.CompletionTime = rep.CompletionTime
	k.Status.GPUs = rep.GPUs
	k.Status.GPUResource = ""
	if names := podGPUResources(pod, r.isGPU(ctx, pod)); len(names) > 0 {
		k.Status.GPUResource = string(names[0])
	}
	setStatus(k, rep.Phase, rep.Reason, rep.Message)
	if releasesPod(rep.Reason) && pod.DeletionTimestamp.IsZero() {
		if err := r.persist(ctx, k, orig); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Delete(ctx, pod, client.Preconditions{UID: &pod.UID}); client.IgnoreNotFound(err) != nil {
			return ctrl.Result{}, fmt.Errorf("deleting pod %s of the failed kernel: %w", pod.Name, err)
		}
		logf.FromContext(ctx).Info("deleted the pod of a kernel that could not start", "pod", pod.Name, "reason", rep.Reason)
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

// startDeadlineMessage says why a kernel did not start in time, and what the user can do.
func startDeadlineMessage(seconds int32, rep podReport) string {
	msg := fmt.Sprintf("the kernel did not start within %ds (its start deadline): %s", seconds, rep.Message)
	switch rep.Reason {
	case ReasonQueued:
		return msg + "; ask for fewer GPUs (or none), or try again when one is free"
	case ReasonUnschedulable, ReasonScheduling:
		return msg + "; ask for fewer resources (or no GPU), or try again later"
	}
	return msg
}

// createPod makes the kernel's pod, unless the kernel has ended (a failed kernel is never
// replaced behind the user's back) or its pod vanished while it ran.
func (r *KernelReconciler) createPod(ctx context.Context, k *ejv1.JupyterKernel) (ctrl.Result, error) {
	if isTerminal(k.Status.Phase) {
		k.Status.GPUs, k.Status.PodIP = 0, ""
		return ctrl.Result{}, nil
	}
	name := kernelPodName(k.Spec.User, k.Name)
	if k.Status.Pod != "" && k.Status.Phase != ejv1.KernelSuspended {
		// The kernel had a pod (not one it suspended): confirm with the API server that it is gone before saying so.
		live := &corev1.Pod{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: k.Status.Pod}, live)
		if err == nil {
			return ctrl.Result{RequeueAfter: time.Second}, nil // the cache lags
		}
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("reading pod %s: %w", k.Status.Pod, err)
		}
		k.Status.GPUs, k.Status.PodIP = 0, ""
		setStatus(k, ejv1.KernelFailed, ReasonPodDeleted, fmt.Sprintf("the kernel's pod %s was deleted while the kernel ran; the kernel is not restarted: shut it down and start a new one, or suspend and resume it", k.Status.Pod))
		return ctrl.Result{}, nil
	}
	// The Secret comes first (the pod mounts it), and only while no pod runs: a new key
	// under a running kernel would cut the gateway off from it.
	if res, err, done := r.ensureSecret(ctx, k); done {
		return res, err
	}
	src, reason, err := r.sources(ctx, k)
	if err != nil {
		return ctrl.Result{}, err
	}
	if reason != "" {
		return ctrl.Result{}, nil // the status says why; a watch on kernelspecs and templates retries
	}
	pod, err := desiredKernelPod(src)
	if err != nil {
		setStatus(k, ejv1.KernelPending, ReasonInvalidSpec, err.Error())
		return ctrl.Result{}, nil
	}
	if err := controllerutil.SetControllerReference(k, pod, r.Scheme()); err != nil {
		return ctrl.Result{}, err
	}
	pod.Annotations[ejv1.AnnotationRequestedAt] = r.clock().UTC().Format(time.RFC3339Nano)
	resumed := k.Status.Phase == ejv1.KernelSuspended
	if err := r.Create(ctx, pod, client.FieldOwner(FieldOwner)); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return ctrl.Result{RequeueAfter: time.Second}, nil // the cache lags; next time it mirrors
		}
		if apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsBadRequest(err) {
			// Refused (by validation, the webhook or a quota): the message says why.
			setStatus(k, ejv1.KernelPending, ReasonInvalidSpec, fmt.Sprintf("the kernel pod was refused: %v", err))
			return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
		}
		return ctrl.Result{}, fmt.Errorf("creating pod %s: %w", pod.Name, err)
	}
	logf.FromContext(ctx).Info("created the kernel pod", "pod", name, "resumed", resumed)
	if resumed {
		r.Recorder.Eventf(k, pod, eventNormal, "Resumed", "Resume", "resumed: created pod %s", pod.Name)
	} else {
		r.Recorder.Eventf(k, pod, eventNormal, "PodCreated", "Start", "created pod %s", pod.Name)
	}
	k.Status.Pod, k.Status.PodIP, k.Status.StartTime, k.Status.CompletionTime, k.Status.GPUs = pod.Name, "", nil, nil, 0
	k.Status.SuspendedGPUs = 0
	k.Status.State = stateStatus(src.spec, k.Status.State)
	setStatus(k, ejv1.KernelPending, ReasonPodCreated, "starting the kernel's pod")
	return ctrl.Result{}, nil
}

// sources reads the kernelspec and template a kernel names. A reason is returned (and set in
// the status) when one is missing.
func (r *KernelReconciler) sources(ctx context.Context, k *ejv1.JupyterKernel) (kernelSources, string, error) {
	src := kernelSources{kernel: k}
	if k.Spec.KernelSpec == nil || k.Spec.KernelSpec.Name == "" {
		return src, "", nil
	}
	ks := &ejv1.JupyterKernelSpec{}
	key := kernelSpecKey(k)
	if err := r.Get(ctx, key, ks); err != nil {
		if apierrors.IsNotFound(err) {
			setStatus(k, ejv1.KernelPending, ReasonKernelSpecNotFound, fmt.Sprintf("JupyterKernelSpec %s not found: create it or fix spec.kernelSpec", key))
			return src, ReasonKernelSpecNotFound, nil
		}
		return src, "", fmt.Errorf("reading kernelspec %s: %w", key, err)
	}
	src.spec = ks
	tmpl, err := templateOf(ctx, r.Client, ks)
	if err != nil {
		if apierrors.IsNotFound(err) {
			setStatus(k, ejv1.KernelPending, ReasonTemplateNotFound, fmt.Sprintf("JupyterKernelTemplate %s of kernelspec %s not found: create it or fix the kernelspec's spec.template", templateKey(ks), key))
			return src, ReasonTemplateNotFound, nil
		}
		return src, "", err
	}
	src.template = tmpl
	return src, "", nil
}

// isGPU is the GPU test for a pod: names containing "gpu", the configured names, and the
// GPU resource of the pod's kernelspec.
func (r *KernelReconciler) isGPU(ctx context.Context, pod *corev1.Pod) func(corev1.ResourceName) bool {
	extra := append([]corev1.ResourceName(nil), r.GPUResources...)
	if ref := pod.Annotations[ejv1.AnnotationKernelSpec]; ref != "" {
		if ns, name, ok := cutKey(ref); ok {
			ks := &ejv1.JupyterKernelSpec{}
			if err := r.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, ks); err == nil && ks.Spec.Resources != nil {
				extra = append(extra, ks.Spec.Resources.GPUResource)
			}
		}
	}
	return gpuMatcher(extra...)
}

// recordTransition reports what users should see: a kernel running, suspended or failed.
func (r *KernelReconciler) recordTransition(orig, k *ejv1.JupyterKernel) {
	if orig.Status.Phase == k.Status.Phase {
		return
	}
	switch k.Status.Phase {
	case ejv1.KernelRunning:
		r.Recorder.Eventf(k, nil, eventNormal, "Started", "Start", "the kernel runs in pod %s at %s", k.Status.Pod, k.Status.PodIP)
	case ejv1.KernelSuspended:
		r.Recorder.Eventf(k, nil, eventNormal, "Suspended", "Suspend", "suspended: the pod is deleted, the connection secret kept")
	case ejv1.KernelFailed:
		r.Recorder.Eventf(k, nil, eventWarning, "Failed", "Fail", "%s: %s", k.Status.Reason, k.Status.Message)
	case ejv1.KernelSucceeded:
		r.Recorder.Eventf(k, nil, eventNormal, "Completed", "Complete", "the kernel exited")
	}
}

func (r *KernelReconciler) kernelsOfSpec(ctx context.Context, o client.Object) []reconcile.Request {
	return r.kernelsWithoutPod(ctx, client.ObjectKeyFromObject(o).String())
}

func (r *KernelReconciler) kernelsOfTemplate(ctx context.Context, o client.Object) []reconcile.Request {
	specs := &ejv1.JupyterKernelSpecList{}
	if err := r.List(ctx, specs, client.MatchingFields{indexTemplate: client.ObjectKeyFromObject(o).String()}); err != nil {
		logf.FromContext(ctx).Error(err, "listing kernelspecs of a template", "template", client.ObjectKeyFromObject(o))
		return nil
	}
	var reqs []reconcile.Request
	for i := range specs.Items {
		reqs = append(reqs, r.kernelsWithoutPod(ctx, client.ObjectKeyFromObject(&specs.Items[i]).String())...)
	}
	return reqs
}

// kernelsWithoutPod are the kernels of a kernelspec still waiting for their pod: a changed
// kernelspec reaches the next pod, never a running one.
func (r *KernelReconciler) kernelsWithoutPod(ctx context.Context, specKey string) []reconcile.Request {
	kernels := &ejv1.JupyterKernelList{}
	if err := r.List(ctx, kernels, client.MatchingFields{indexKernelSpec: specKey}); err != nil {
		logf.FromContext(ctx).Error(err, "listing kernels of a kernelspec", "kernelspec", specKey)
		return nil
	}
	var reqs []reconcile.Request
	for i := range kernels.Items {
		if kernels.Items[i].Status.Pod == "" {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&kernels.Items[i])})
		}
	}
	return reqs
}

func setStatus(k *ejv1.JupyterKernel, phase ejv1.KernelPhase, reason, message string) {
	k.Status.Phase, k.Status.Reason, k.Status.Message = phase, reason, message
}

func isTerminal(p ejv1.KernelPhase) bool {
	return p == ejv1.KernelFailed || p == ejv1.KernelSucceeded
}

// kernelName is the kernel_name of a kernel's connection file: its kernelspec's name.
func kernelName(k *ejv1.JupyterKernel) string {
	if k.Spec.KernelSpec != nil {
		return k.Spec.KernelSpec.Name
	}
	return ""
}

// kernelSpecKey is the kernelspec a kernel names; the namespace defaults to the kernel's.
func kernelSpecKey(k *ejv1.JupyterKernel) types.NamespacedName {
	return types.NamespacedName{Namespace: nonEmpty(k.Spec.KernelSpec.Namespace, k.Namespace), Name: k.Spec.KernelSpec.Name}
}

// templateKey is the template a kernelspec names; the namespace defaults to the kernelspec's.
func templateKey(ks *ejv1.JupyterKernelSpec) types.NamespacedName {
	return types.NamespacedName{Namespace: nonEmpty(ks.Spec.Template.Namespace, ks.Namespace), Name: ks.Spec.Template.Name}
}

// templateOf reads a kernelspec's template; nil without error when it names none.
func templateOf(ctx context.Context, c client.Reader, ks *ejv1.JupyterKernelSpec) (*ejv1.JupyterKernelTemplate, error) {
	if ks.Spec.Template == nil || ks.Spec.Template.Name == "" {
		return nil, nil
	}
	t := &ejv1.JupyterKernelTemplate{}
	if err := c.Get(ctx, templateKey(ks), t); err != nil {
		return nil, err
	}
	return t, nil
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func cutKey(s string) (ns, name string, ok bool) {
	ns, name, ok = strings.Cut(s, "/")
	return ns, name, ok && ns != "" && name != ""
}
