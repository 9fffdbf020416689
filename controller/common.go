package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// FieldOwner is the field manager of everything the controller writes.
const FieldOwner = "elastic-jupyter"

// Event types.
const (
	eventNormal  = "Normal"
	eventWarning = "Warning"
)

// commonLabels are the labels of every object made for an owner CR.
// specOrLabelsChanged passes the events of a reconciled kind that change its spec or its
// labels: its own status writes move neither and need no reconcile.
var specOrLabelsChanged = predicate.Or(predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{})

// nonRootPodSecurityContext runs a pod as uid:gid, never root, with the runtime's default
// seccomp profile.
func nonRootPodSecurityContext(uid, gid int64) *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To(uid),
		RunAsGroup:     ptr.To(gid),
		FSGroup:        ptr.To(gid),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

func commonLabels(component, instance string) map[string]string {
	return map[string]string{
		ejv1.LabelName:      "elastic-jupyter",
		ejv1.LabelComponent: component,
		ejv1.LabelInstance:  instance,
		ejv1.LabelManagedBy: ejv1.ManagedBy,
	}
}

// selectorLabels are the labels that select a notebook's or a gateway's pods. They never
// change, since a Deployment's selector is immutable.
func selectorLabels(component, instance string) map[string]string {
	return map[string]string{
		ejv1.LabelComponent: component,
		ejv1.LabelInstance:  instance,
	}
}

// mergeMaps returns a copy of base with over laid on top.
func mergeMaps(base, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// setCondition sets a condition with the object's generation.
func setCondition(conds *[]metav1.Condition, generation int64, typ string, ok bool, reason, message string) {
	status := metav1.ConditionFalse
	if ok {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: message, ObservedGeneration: generation,
	})
}

// patchStatus writes obj's status with a merge patch against orig, only when it changed. A
// merge patch carries only the fields this controller changed, so fields other writers own
// (the gateway's activity fields on kernels) are never overwritten. The patch holds orig's
// resourceVersion: a status computed from a stale cached object is refused (a conflict), never
// written over a newer one.
func patchStatus(ctx context.Context, c client.Client, obj, orig client.Object, statusOf func(client.Object) any) (changed bool, err error) {
	if equality.Semantic.DeepEqual(statusOf(obj), statusOf(orig)) {
		return false, nil
	}
	patch := client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})
	if err := c.Status().Patch(ctx, obj, patch, client.FieldOwner(FieldOwner)); err != nil {
		return false, fmt.Errorf("writing the status of %s: %w", client.ObjectKeyFromObject(obj), err)
	}
	return true, nil
}

// recordReady reports a change of an object's Ready condition (it became ready, or stopped
// being ready and why) as an event.
func recordReady(rec events.EventRecorder, obj runtime.Object, before, after []metav1.Condition) {
	a := meta.FindStatusCondition(after, ejv1.ConditionReady)
	if a == nil {
		return
	}
	if b := meta.FindStatusCondition(before, ejv1.ConditionReady); b != nil && b.Status == a.Status && b.Reason == a.Reason {
		return
	}
	typ := eventNormal
	if a.Status != metav1.ConditionTrue {
		typ = eventWarning
		if a.Reason == ReasonDeploymentNotReady || a.Reason == ReasonNotebookNotReady {
			typ = eventNormal // waiting for a pod is no trouble
		}
	}
	rec.Eventf(obj, nil, typ, a.Reason, "Reconcile", "%s", a.Message)
}

// conflictRetry is how soon a reconcile that lost a write race (its cached object was stale)
// runs again.
const conflictRetry = 250 * time.Millisecond

// finish turns a reconcile's outcome into its result: a conflict (a stale cached object) is
// retried shortly, without logging an error.
func finish(res ctrl.Result, err error) (ctrl.Result, error) {
	if err != nil && apierrors.IsConflict(err) && !hasOtherErrors(err) {
		return ctrl.Result{RequeueAfter: conflictRetry}, nil
	}
	return res, err
}

// hasOtherErrors reports whether a joined error holds something besides conflicts.
func hasOtherErrors(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !apierrors.IsConflict(e) {
				return true
			}
		}
	}
	return false
}

// apply writes obj with server-side apply as FieldOwner, taking over fields others changed.
// obj holds exactly the fields the controller wants set: the API server keeps fields other
// managers own, removes fields the controller set before and no longer sets, and writes
// nothing when nothing changed (so an unchanged object keeps its resourceVersion).
func apply(ctx context.Context, c client.Client, obj client.Object) error {
	gvk, err := apiutil.GVKForObject(obj, c.Scheme())
	if err != nil {
		return err
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return fmt.Errorf("converting %s %s: %w", gvk.Kind, client.ObjectKeyFromObject(obj), err)
	}
	delete(m, "status")
	pruneNulls(m)
	u := &unstructured.Unstructured{Object: m}
	u.SetGroupVersionKind(gvk)
	if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", gvk.Kind, client.ObjectKeyFromObject(obj), err)
	}
	return nil
}

// pruneNulls removes the nulls of an object converted from a Go struct (creationTimestamp:
// null and the like), so the controller claims no field it never set. Empty maps stay: some
// mean something (emptyDir: {}).
func pruneNulls(m map[string]any) {
	for k, v := range m {
		switch t := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			pruneNulls(t)
		case []any:
			for _, e := range t {
				if em, ok := e.(map[string]any); ok {
					pruneNulls(em)
				}
			}
		}
	}
}

// ownedBy reports whether obj's controller reference is the object with the given UID.
func ownedBy(obj metav1.Object, owner metav1.Object) bool {
	ref := metav1.GetControllerOf(obj)
	return ref != nil && ref.UID == owner.GetUID()
}
