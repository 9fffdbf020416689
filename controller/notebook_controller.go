package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// Reasons of a notebook's Ready condition.
const (
	ReasonNotebookReady      = "NotebookReady"
	ReasonNotebookNotReady   = "NotebookNotReady"
	ReasonNotebookFailed     = "NotebookFailed"
	ReasonGatewayNotFound    = "GatewayNotFound"
	ReasonGatewayTokenAbsent = "GatewayTokenNotFound"
	ReasonAuthSecretNotFound = "AuthSecretNotFound"
)

// retryMissing is how soon a notebook looks again for a Secret of the user's that it cannot
// watch (the controller caches only the Secrets it makes).
const retryMissing = 10 * time.Second

// defaultLaunchTimeout is a gateway's launchTimeout when its spec has none (the CRD default).
const defaultLaunchTimeout = 300

// NotebookReconciler runs each JupyterNotebook as a Deployment and a Service, pointed at its
// gateway, with its credentials in a Secret.
type NotebookReconciler struct {
	client.Client
	// APIReader reads Secrets the user made, which the cache does not hold.
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Image is the notebook server's image when the template names none.
	Image string
}

func (r *NotebookReconciler) setup(mgr manager.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("jupyternotebook").
		For(&ejv1.JupyterNotebook{}, builder.WithPredicates(specOrLabelsChanged)).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Owns(&corev1.Secret{}).
		Owns(&corev1.ConfigMap{}).
		Watches(&ejv1.JupyterGateway{}, handler.EnqueueRequestsFromMapFunc(r.notebooksOfGateway), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.notebooksOfGatewayToken)).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *NotebookReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	nb := &ejv1.JupyterNotebook{}
	if err := r.Get(ctx, req.NamespacedName, nb); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !nb.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	orig := nb.DeepCopy()
	nb.Status.URL = fmt.Sprintf("http://%s.%s.svc:%d", nb.Name, nb.Namespace, JupyterPort)
	res, blocked, err := r.ensure(ctx, nb)
	if blocked == nil && err == nil {
		err = r.observe(ctx, nb)
	} else if blocked != nil {
		nb.Status.Phase = ejv1.NotebookPending
		setCondition(&nb.Status.Conditions, nb.Generation, ejv1.ConditionReady, false, blocked.reason, blocked.message)
	} else {
		setCondition(&nb.Status.Conditions, nb.Generation, ejv1.ConditionReady, false, ReasonReconcileFailed, err.Error())
	}
	nb.Status.ObservedGeneration = nb.Generation
	changed, perr := patchStatus(ctx, r.Client, nb, orig, func(o client.Object) any { return o.(*ejv1.JupyterNotebook).Status })
	if perr != nil {
		err = errors.Join(err, perr)
	}
	if changed {
		recordReady(r.Recorder, nb, orig.Status.Conditions, nb.Status.Conditions)
	}
	return finish(res, err)
}

// blocker says why a notebook cannot be deployed yet.
type blocker struct{ reason, message string }

// ensure creates or updates the notebook's objects. blocked says what it waits for.
func (r *NotebookReconciler) ensure(ctx context.Context, nb *ejv1.JupyterNotebook) (ctrl.Result, *blocker, error) {
	var gwInfo *notebookGateway
	if nb.Spec.Gateway != nil && nb.Spec.Gateway.Name != "" {
		var res ctrl.Result
		var b *blocker
		var err error
		gwInfo, res, b, err = r.gateway(ctx, nb)
		if err != nil || b != nil {
			return res, b, err
		}
		nb.Status.GatewayURL = gwInfo.URL
	} else {
		nb.Status.GatewayURL = ""
	}
	if notebookAuthEnabled(nb) {
		if res, b, err := r.ensureAuth(ctx, nb); err != nil || b != nil {
			return res, b, err
		}
	}
	if notebookNeedsConfig(nb, gwInfo) {
		if err := r.applyOwned(ctx, nb, desiredNotebookConfig(nb)); err != nil {
			return ctrl.Result{}, nil, err
		}
	}
	d, err := desiredNotebookDeployment(nb, r.Image, gwInfo)
	if err != nil {
		return ctrl.Result{}, &blocker{ReasonInvalidSpec, err.Error()}, nil
	}
	if err := r.applyOwned(ctx, nb, d); err != nil {
		return ctrl.Result{}, nil, err
	}
	return ctrl.Result{}, nil, r.applyOwned(ctx, nb, desiredService(nb.Name, nb.Namespace, ejv1.ComponentNotebook))
}

// gateway finds what the notebook needs from its gateway: the URL and a token Secret in the
// notebook's namespace (the gateway's own, or a copy from another namespace).
func (r *NotebookReconciler) gateway(ctx context.Context, nb *ejv1.JupyterNotebook) (*notebookGateway, ctrl.Result, *blocker, error) {
	key := notebookGatewayKey(nb)
	gw := &ejv1.JupyterGateway{}
	if err := r.Get(ctx, key, gw); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, ctrl.Result{}, &blocker{ReasonGatewayNotFound, fmt.Sprintf("JupyterGateway %s not found: create it or fix spec.gateway", key)}, nil
		}
		return nil, ctrl.Result{}, nil, fmt.Errorf("reading gateway %s: %w", key, err)
	}
	info := &notebookGateway{URL: GatewayURL(key.Name, key.Namespace), LaunchTimeout: defaultLaunchTimeout}
	if gw.Spec.LaunchTimeout != nil {
		info.LaunchTimeout = *gw.Spec.LaunchTimeout
	}
	if !gatewayAuthEnabled(gw) {
		return info, ctrl.Result{}, nil, nil
	}
	// The notebook's own credential: the gateway knows who calls it, and one notebook's token
	// reaches no other notebook's kernels.
	name := nb.Name + NotebookGatewayTokenSuffix
	s := &corev1.Secret{}
	skey := types.NamespacedName{Namespace: nb.Namespace, Name: name}
	err := r.Get(ctx, skey, s)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, skey, s)
	}
	switch {
	case err == nil && s.Annotations[ejv1.AnnotationCredential] == CredentialNotebook && len(s.Data[TokenKey]) > 0:
	case err == nil || apierrors.IsNotFound(err):
		// Missing, or an older installation's copy of the shared gateway token: a token of
		// its own replaces it.
		desired, terr := newNotebookGatewayToken(nb, key)
		if terr != nil {
			return nil, ctrl.Result{}, nil, terr
		}
		if err := r.applyOwned(ctx, nb, desired); err != nil {
			return nil, ctrl.Result{}, nil, err
		}
		logf.FromContext(ctx).Info("gave the notebook a gateway token of its own", "secret", name, "gateway", key)
	default:
		return nil, ctrl.Result{}, nil, fmt.Errorf("reading the notebook's gateway token secret %s: %w", skey, err)
	}
	info.TokenSecret = name
	return info, ctrl.Result{}, nil, nil
}

// ensureAuth makes the notebook's credentials Secret: from the literals of the spec, or with
// a random token when the spec gives neither literals nor a Secret. A Secret the user names
// must exist.
func (r *NotebookReconciler) ensureAuth(ctx context.Context, nb *ejv1.JupyterNotebook) (ctrl.Result, *blocker, error) {
	if notebookLiteralAuth(nb) {
		return ctrl.Result{}, nil, r.applyOwned(ctx, nb, desiredNotebookLiteralSecret(nb))
	}
	key := types.NamespacedName{Namespace: nb.Namespace, Name: NotebookAuthSecretName(nb)}
	if err := r.Get(ctx, key, &corev1.Secret{}); err == nil {
		return ctrl.Result{}, nil, nil
	}
	err := r.APIReader.Get(ctx, key, &corev1.Secret{})
	if err == nil {
		return ctrl.Result{}, nil, nil
	}
	if !apierrors.IsNotFound(err) {
		return ctrl.Result{}, nil, fmt.Errorf("reading the auth secret %s: %w", key, err)
	}
	if a := nb.Spec.Auth; a != nil && a.SecretRef != nil && a.SecretRef.Name != "" {
		return ctrl.Result{RequeueAfter: retryMissing}, &blocker{ReasonAuthSecretNotFound,
			fmt.Sprintf("Secret %s named by spec.auth.secretRef not found: create it with the key %q or %q", key, TokenKey, PasswordKey)}, nil
	}
	s, err := newNotebookTokenSecret(nb)
	if err != nil {
		return ctrl.Result{}, nil, err
	}
	if err := controllerutil.SetControllerReference(nb, s, r.Scheme()); err != nil {
		return ctrl.Result{}, nil, err
	}
	if err := r.Create(ctx, s, client.FieldOwner(FieldOwner)); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, nil, fmt.Errorf("creating the auth secret %s: %w", key, err)
	}
	logf.FromContext(ctx).Info("created the notebook's auth secret with a random token", "secret", key.Name)
	return ctrl.Result{}, nil, nil
}

func (r *NotebookReconciler) applyOwned(ctx context.Context, nb *ejv1.JupyterNotebook, obj client.Object) error {
	if err := controllerutil.SetControllerReference(nb, obj, r.Scheme()); err != nil {
		return err
	}
	return apply(ctx, r.Client, obj)
}

// observe reports the Deployment's state.
func (r *NotebookReconciler) observe(ctx context.Context, nb *ejv1.JupyterNotebook) error {
	d := &appsv1.Deployment{}
	if err := r.Get(ctx, client.ObjectKeyFromObject(nb), d); client.IgnoreNotFound(err) != nil {
		return err
	}
	nb.Status.ReadyReplicas = d.Status.ReadyReplicas
	switch {
	case d.Status.ReadyReplicas > 0:
		nb.Status.Phase = ejv1.NotebookRunning
		setCondition(&nb.Status.Conditions, nb.Generation, ejv1.ConditionReady, true, ReasonNotebookReady, fmt.Sprintf("the notebook server serves at %s", nb.Status.URL))
	case deploymentFailure(d) != "":
		nb.Status.Phase = ejv1.NotebookFailed
		setCondition(&nb.Status.Conditions, nb.Generation, ejv1.ConditionReady, false, ReasonNotebookFailed, deploymentFailure(d))
	default:
		nb.Status.Phase = ejv1.NotebookPending
		setCondition(&nb.Status.Conditions, nb.Generation, ejv1.ConditionReady, false, ReasonNotebookNotReady, "waiting for the notebook server pod to become ready")
	}
	return nil
}

// deploymentFailure is the message of a Deployment that cannot make progress, or "".
func deploymentFailure(d *appsv1.Deployment) string {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue {
			return c.Message
		}
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return c.Message
		}
	}
	return ""
}

func (r *NotebookReconciler) notebooksOfGateway(ctx context.Context, o client.Object) []reconcile.Request {
	return r.notebooksOf(ctx, client.ObjectKeyFromObject(o))
}

// notebooksOfGatewayToken maps a gateway's token Secret (one the controller made) to the
// notebooks of that gateway.
func (r *NotebookReconciler) notebooksOfGatewayToken(ctx context.Context, o client.Object) []reconcile.Request {
	l := o.GetLabels()
	if l[ejv1.LabelComponent] != ejv1.ComponentGateway || l[ejv1.LabelInstance] == "" {
		return nil
	}
	return r.notebooksOf(ctx, types.NamespacedName{Namespace: o.GetNamespace(), Name: l[ejv1.LabelInstance]})
}

func (r *NotebookReconciler) notebooksOf(ctx context.Context, gw types.NamespacedName) []reconcile.Request {
	nbs := &ejv1.JupyterNotebookList{}
	if err := r.List(ctx, nbs, client.MatchingFields{indexNotebookGateway: gw.String()}); err != nil {
		logf.FromContext(ctx).Error(err, "listing notebooks of a gateway", "gateway", gw)
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(nbs.Items))
	for i := range nbs.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&nbs.Items[i])})
	}
	return reqs
}
