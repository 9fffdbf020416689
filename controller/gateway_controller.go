package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// gatewayFinalizer holds a gateway whose kernels run in another namespace until its Role and
// RoleBinding there (which no owner reference can reach) are removed.
const gatewayFinalizer = "kubeflow.tkestack.io/kernel-namespace-rbac"

// Reasons of a gateway's Ready condition.
const (
	ReasonDeploymentReady    = "DeploymentReady"
	ReasonDeploymentNotReady = "DeploymentNotReady"
	ReasonRBACFailed         = "RBACFailed"
	ReasonReconcileFailed    = "ReconcileFailed"
)

// GatewayReconciler runs each JupyterGateway as a ServiceAccount, least-privilege RBAC, a
// token Secret, a Deployment of `elastic-jupyter gateway` and a Service, and reports its
// readiness and the kernels, suspended kernels and GPUs it holds.
type GatewayReconciler struct {
	client.Client
	// APIReader reads Secrets the user made, which the cache does not hold.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Image is the image of gateways whose spec.image is empty.
	Image string

	// accounting counts the GPU time its kernels gave back.
	accounting *gpuAccounting
}

// givenBackRecheck is how often a gateway with suspended kernels records the GPU time they
// gave back.
const givenBackRecheck = time.Minute

func (r *GatewayReconciler) setup(mgr manager.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("jupytergateway").
		For(&ejv1.JupyterGateway{}, builder.WithPredicates(specOrLabelsChanged)).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.ServiceAccount{}).
		Owns(&corev1.Secret{}).
		Watches(&rbacv1.Role{}, handler.EnqueueRequestsFromMapFunc(gatewayOfRBAC)).
		Watches(&rbacv1.RoleBinding{}, handler.EnqueueRequestsFromMapFunc(gatewayOfRBAC)).
		Watches(&ejv1.JupyterKernel{}, handler.EnqueueRequestsFromMapFunc(gatewayOfKernel), builder.WithPredicates(kernelCountChanged())).
		Watches(&ejv1.JupyterNotebook{}, handler.EnqueueRequestsFromMapFunc(gatewayOfNotebook)).
		Watches(&ejv1.JupyterKernelSpec{}, handler.EnqueueRequestsFromMapFunc(r.gatewaysOfKernelSpec), builder.WithPredicates(predicate.Funcs{
			UpdateFunc: func(event.UpdateEvent) bool { return false }, // only creations and deletions change what exists
		})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(gatewayOfCredential)).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *GatewayReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	gw := &ejv1.JupyterGateway{}
	if err := r.Get(ctx, req.NamespacedName, gw); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !gw.DeletionTimestamp.IsZero() {
		if !controllerutil.ContainsFinalizer(gw, gatewayFinalizer) {
			return ctrl.Result{}, nil // the garbage collector removes what it owns
		}
		if err := r.removeStaleRBAC(ctx, gw, nil); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{}, r.patchFinalizer(ctx, gw, false)
	}
	crossNS := gatewayKernelNamespace(gw) != gw.Namespace
	if crossNS && !controllerutil.ContainsFinalizer(gw, gatewayFinalizer) {
		if err := r.patchFinalizer(ctx, gw, true); err != nil {
			return ctrl.Result{}, err
		}
	}

	orig := gw.DeepCopy()
	reason, err := r.ensureObjects(ctx, gw)
	if err == nil && !crossNS && controllerutil.ContainsFinalizer(gw, gatewayFinalizer) {
		// Back in one namespace: the other one's RBAC is gone (ensureObjects removed it).
		if err := r.patchFinalizer(ctx, gw, false); err != nil {
			return ctrl.Result{}, err
		}
		orig = gw.DeepCopy()
	}
	if serr := r.observe(ctx, gw); serr != nil {
		err = errors.Join(err, serr)
	}
	if err != nil {
		setCondition(&gw.Status.Conditions, gw.Generation, ejv1.ConditionReady, false, reason, err.Error())
	}
	gw.Status.ObservedGeneration = gw.Generation
	changed, perr := patchStatus(ctx, r.Client, gw, orig, func(o client.Object) any { return o.(*ejv1.JupyterGateway).Status })
	if perr != nil {
		err = errors.Join(err, perr)
	}
	if changed {
		recordReady(r.Recorder, gw, orig.Status.Conditions, gw.Status.Conditions)
	}
	res := ctrl.Result{}
	if gw.Status.KernelsSuspended > 0 {
		res.RequeueAfter = givenBackRecheck // to record the GPU time they give back
	}
	return finish(res, err)
}

func (r *GatewayReconciler) patchFinalizer(ctx context.Context, gw *ejv1.JupyterGateway, add bool) error {
	orig := gw.DeepCopy()
	if add {
		controllerutil.AddFinalizer(gw, gatewayFinalizer)
	} else {
		controllerutil.RemoveFinalizer(gw, gatewayFinalizer)
	}
	if err := r.Patch(ctx, gw, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("updating the finalizers of gateway %s: %w", client.ObjectKeyFromObject(gw), err)
	}
	return nil
}

// ensureObjects creates or updates the gateway's objects; on error, reason says which part
// failed.
func (r *GatewayReconciler) ensureObjects(ctx context.Context, gw *ejv1.JupyterGateway) (string, error) {
	if gatewayAuthEnabled(gw) {
		if err := r.ensureToken(ctx, gw); err != nil {
			return ReasonReconcileFailed, err
		}
		creds, err := r.notebookCredentials(ctx, gw)
		if err != nil {
			return ReasonReconcileFailed, err
		}
		secret, err := desiredGatewayCredentials(gw, creds)
		if err != nil {
			return ReasonReconcileFailed, err
		}
		if err := r.applyOwned(ctx, gw, secret); err != nil {
			return ReasonReconcileFailed, err
		}
	}
	if err := r.applyOwned(ctx, gw, desiredGatewayServiceAccount(gw)); err != nil {
		return ReasonReconcileFailed, err
	}
	roles, bindings := desiredGatewayRBAC(gw)
	for _, role := range roles {
		if err := r.applyOwned(ctx, gw, role); err != nil {
			return ReasonRBACFailed, err
		}
	}
	for _, rb := range bindings {
		if err := r.applyBinding(ctx, gw, rb); err != nil {
			return ReasonRBACFailed, err
		}
	}
	if err := r.removeStaleRBAC(ctx, gw, append(objectsOf(roles), objectsOf(bindings)...)); err != nil {
		return ReasonRBACFailed, err
	}
	if err := r.applyOwned(ctx, gw, desiredGatewayDeployment(gw, r.Image)); err != nil {
		return ReasonReconcileFailed, err
	}
	if err := r.applyOwned(ctx, gw, desiredService(gw.Name, gw.Namespace, ejv1.ComponentGateway)); err != nil {
		return ReasonReconcileFailed, err
	}
	return "", nil
}

// applyOwned applies obj, owned by gw when it lives in gw's namespace.
func (r *GatewayReconciler) applyOwned(ctx context.Context, gw *ejv1.JupyterGateway, obj client.Object) error {
	if obj.GetNamespace() == gw.Namespace {
		if err := controllerutil.SetControllerReference(gw, obj, r.Scheme()); err != nil {
			return err
		}
	}
	return apply(ctx, r.Client, obj)
}

// applyBinding applies a RoleBinding, recreating it when its roleRef (immutable) changes.
func (r *GatewayReconciler) applyBinding(ctx context.Context, gw *ejv1.JupyterGateway, rb *rbacv1.RoleBinding) error {
	cur := &rbacv1.RoleBinding{}
	err := r.Get(ctx, client.ObjectKeyFromObject(rb), cur)
	if err == nil && cur.RoleRef != rb.RoleRef {
		if err := r.Delete(ctx, cur, client.Preconditions{UID: &cur.UID}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("replacing rolebinding %s: %w", client.ObjectKeyFromObject(rb), err)
		}
	} else if client.IgnoreNotFound(err) != nil {
		return err
	}
	return r.applyOwned(ctx, gw, rb)
}

// removeStaleRBAC deletes the gateway's Roles and RoleBindings that are not in keep (those
// of a former kernel namespace, or Roles replaced by a ClusterRole).
func (r *GatewayReconciler) removeStaleRBAC(ctx context.Context, gw *ejv1.JupyterGateway, keep []client.Object) error {
	wanted := map[string]bool{}
	for _, o := range keep {
		wanted[fmt.Sprintf("%T/%s", o, client.ObjectKeyFromObject(o))] = true
	}
	sel := client.MatchingLabels{ejv1.LabelGateway: gw.Name, ejv1.LabelManagedBy: ejv1.ManagedBy, ejv1.LabelComponent: ejv1.ComponentGateway}
	roles := &rbacv1.RoleList{}
	if err := r.List(ctx, roles, sel); err != nil {
		return fmt.Errorf("listing the gateway's roles: %w", err)
	}
	bindings := &rbacv1.RoleBindingList{}
	if err := r.List(ctx, bindings, sel); err != nil {
		return fmt.Errorf("listing the gateway's rolebindings: %w", err)
	}
	var existing []client.Object
	for i := range roles.Items {
		existing = append(existing, &roles.Items[i])
	}
	for i := range bindings.Items {
		existing = append(existing, &bindings.Items[i])
	}
	for _, o := range existing {
		if wanted[fmt.Sprintf("%T/%s", o, client.ObjectKeyFromObject(o))] || !belongsToGateway(o, gw) {
			continue
		}
		uid := o.GetUID()
		if err := r.Delete(ctx, o, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("deleting %T %s: %w", o, client.ObjectKeyFromObject(o), err)
		}
		logf.FromContext(ctx).Info("deleted a stale gateway RBAC object", "namespace", o.GetNamespace(), "name", o.GetName())
	}
	return nil
}

// belongsToGateway reports whether an RBAC object labelled with gw's name is gw's: owned by
// it in its namespace, annotated with its namespace elsewhere.
func belongsToGateway(o client.Object, gw *ejv1.JupyterGateway) bool {
	if o.GetNamespace() == gw.Namespace {
		return ownedBy(o, gw)
	}
	return o.GetAnnotations()[ejv1.AnnotationGatewayNamespace] == gw.Namespace
}

func objectsOf[T client.Object](in []T) []client.Object {
	out := make([]client.Object, 0, len(in))
	for _, o := range in {
		out = append(out, o)
	}
	return out
}

// ensureToken creates the gateway's token Secret with a random token when it does not exist.
// An existing Secret (the user's or an earlier one) is never changed.
func (r *GatewayReconciler) ensureToken(ctx context.Context, gw *ejv1.JupyterGateway) error {
	key := types.NamespacedName{Namespace: gw.Namespace, Name: GatewayTokenSecretName(gw)}
	if err := r.Get(ctx, key, &corev1.Secret{}); err == nil {
		return nil
	}
	err := r.APIReader.Get(ctx, key, &corev1.Secret{})
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("reading the token secret %s: %w", key, err)
	}
	s, err := newGatewayTokenSecret(gw)
	if err != nil {
		return err
	}
	if err := controllerutil.SetControllerReference(gw, s, r.Scheme()); err != nil {
		return err
	}
	if err := r.Create(ctx, s, client.FieldOwner(FieldOwner)); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the token secret %s: %w", key, err)
	}
	logf.FromContext(ctx).Info("created the gateway's token secret", "secret", key.Name)
	return nil
}

// observe fills in the status: readiness from the Deployment, counts from the kernels.
func (r *GatewayReconciler) observe(ctx context.Context, gw *ejv1.JupyterGateway) error {
	gw.Status.URL = GatewayURL(gw.Name, gw.Namespace)
	d := &appsv1.Deployment{}
	if err := r.Get(ctx, client.ObjectKeyFromObject(gw), d); client.IgnoreNotFound(err) != nil {
		return err
	}
	gw.Status.ReadyReplicas = d.Status.ReadyReplicas
	gw.Status.Ready = d.Status.ReadyReplicas > 0
	if gw.Status.Ready {
		setCondition(&gw.Status.Conditions, gw.Generation, ejv1.ConditionReady, true, ReasonDeploymentReady, fmt.Sprintf("the gateway serves at %s", gw.Status.URL))
	} else {
		setCondition(&gw.Status.Conditions, gw.Generation, ejv1.ConditionReady, false, ReasonDeploymentNotReady, "waiting for the gateway pod to become ready")
	}
	kernels := &ejv1.JupyterKernelList{}
	if err := r.List(ctx, kernels, client.InNamespace(gatewayKernelNamespace(gw)), client.MatchingLabels{ejv1.LabelGateway: gw.Name}); err != nil {
		return fmt.Errorf("listing the gateway's kernels: %w", err)
	}
	var running, suspended, gpus int32
	for i := range kernels.Items {
		k := &kernels.Items[i]
		if nonEmpty(k.Annotations[ejv1.AnnotationGatewayNamespace], k.Namespace) != gw.Namespace {
			continue
		}
		switch k.Status.Phase {
		case ejv1.KernelRunning:
			running++
		case ejv1.KernelSuspended:
			suspended++
		}
		gpus += k.Status.GPUs
	}
	gw.Status.KernelsRunning, gw.Status.KernelsSuspended, gw.Status.GPUsHeld = running, suspended, gpus
	if s := r.accounting.takeGivenBack(client.ObjectKeyFromObject(gw)); s > 0 || gw.Status.GPUSecondsGivenBack > 0 {
		gw.Status.GPUSecondsGivenBack += s
		gw.Status.GPUHoursGivenBack = fmt.Sprintf("%.2f", float64(gw.Status.GPUSecondsGivenBack)/3600)
	}
	return r.observeKernelSpecs(ctx, gw)
}

// Reasons of a gateway's KernelSpecsFound condition.
const (
	ReasonKernelSpecsFound  = "KernelSpecsFound"
	ReasonKernelSpecMissing = "KernelSpecNotFound"
)

// observeKernelSpecs reports the kernelspecs the gateway's spec names that do not exist: the
// gateway does not offer them (and a start of one answers 404) until they do.
func (r *GatewayReconciler) observeKernelSpecs(ctx context.Context, gw *ejv1.JupyterGateway) error {
	list := &ejv1.JupyterKernelSpecList{}
	if err := r.List(ctx, list, client.InNamespace(gw.Namespace)); err != nil {
		return fmt.Errorf("listing the gateway's kernelspecs: %w", err)
	}
	have := map[string]bool{}
	for i := range list.Items {
		have[list.Items[i].Name] = true
	}
	missing := missingKernelSpecs(gw, have)
	if len(missing) == 0 {
		setCondition(&gw.Status.Conditions, gw.Generation, ejv1.ConditionKernelSpecsFound, true, ReasonKernelSpecsFound, "every kernelspec the gateway names exists")
		return nil
	}
	setCondition(&gw.Status.Conditions, gw.Generation, ejv1.ConditionKernelSpecsFound, false, ReasonKernelSpecMissing,
		fmt.Sprintf("JupyterKernelSpec %s not found in namespace %s: the gateway does not offer it; create it, or remove it from spec.kernels (or spec.defaultKernel)",
			strings.Join(missing, ", "), gw.Namespace))
	return nil
}

// missingKernelSpecs are the names of spec.kernels and spec.defaultKernel that have no
// kernelspec, in order.
func missingKernelSpecs(gw *ejv1.JupyterGateway, have map[string]bool) []string {
	names := append([]string(nil), gw.Spec.Kernels...)
	if d := gw.Spec.DefaultKernel; d != nil && *d != "" && !slices.Contains(names, *d) {
		names = append(names, *d)
	}
	var missing []string
	for _, n := range names {
		if !have[n] && !slices.Contains(missing, n) {
			missing = append(missing, n)
		}
	}
	return missing
}

// gatewaysOfKernelSpec maps a kernelspec to the gateways of its namespace, whose offer it may
// change.
func (r *GatewayReconciler) gatewaysOfKernelSpec(ctx context.Context, o client.Object) []reconcile.Request {
	list := &ejv1.JupyterGatewayList{}
	if err := r.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		logf.FromContext(ctx).Error(err, "listing the gateways of a kernelspec's namespace", "namespace", o.GetNamespace())
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// gatewayOfRBAC maps a gateway's Role or RoleBinding to the gateway.
func gatewayOfRBAC(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[ejv1.LabelGateway]
	if name == "" || o.GetLabels()[ejv1.LabelManagedBy] != ejv1.ManagedBy {
		return nil
	}
	ns := nonEmpty(o.GetAnnotations()[ejv1.AnnotationGatewayNamespace], o.GetNamespace())
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
}

// gatewayOfKernel maps a kernel to the gateway that manages it.
func gatewayOfKernel(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[ejv1.LabelGateway]
	if name == "" {
		return nil
	}
	ns := nonEmpty(o.GetAnnotations()[ejv1.AnnotationGatewayNamespace], o.GetNamespace())
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
}

// kernelCountChanged passes kernel events that change a gateway's counts: creation,
// deletion, and a change of phase, GPUs or labels (not the gateway's activity updates).
func kernelCountChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			a, okA := e.ObjectOld.(*ejv1.JupyterKernel)
			b, okB := e.ObjectNew.(*ejv1.JupyterKernel)
			if !okA || !okB {
				return true
			}
			return a.Status.Phase != b.Status.Phase || a.Status.GPUs != b.Status.GPUs ||
				a.Labels[ejv1.LabelGateway] != b.Labels[ejv1.LabelGateway] ||
				a.Annotations[ejv1.AnnotationGatewayNamespace] != b.Annotations[ejv1.AnnotationGatewayNamespace]
		},
	}
}
