package controller

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// Reasons of the Ready conditions of kernelspecs and templates.
const (
	ReasonValid = "Valid"
)

// KernelSpecReconciler says in each JupyterKernelSpec's Ready condition whether kernels can
// be made from it: its template exists and the pod it makes is complete. A kernelspec whose
// template appears later turns Ready.
type KernelSpecReconciler struct {
	client.Client
}

func (r *KernelSpecReconciler) setup(mgr manager.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("jupyterkernelspec").
		For(&ejv1.JupyterKernelSpec{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&ejv1.JupyterKernelTemplate{}, handler.EnqueueRequestsFromMapFunc(r.specsOfTemplate), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *KernelSpecReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	ks := &ejv1.JupyterKernelSpec{}
	if err := r.Get(ctx, req.NamespacedName, ks); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := ks.DeepCopy()
	ok, reason, message, err := r.check(ctx, ks)
	if err == nil {
		setCondition(&ks.Status.Conditions, ks.Generation, ejv1.ConditionReady, ok, reason, message)
		ks.Status.ObservedGeneration = ks.Generation
	}
	if _, perr := patchStatus(ctx, r.Client, ks, orig, func(o client.Object) any { return o.(*ejv1.JupyterKernelSpec).Status }); perr != nil {
		err = errors.Join(err, perr)
	}
	return finish(ctrl.Result{}, err)
}

// check builds the pod of a kernel of ks, as the kernel reconciler would.
func (r *KernelSpecReconciler) check(ctx context.Context, ks *ejv1.JupyterKernelSpec) (bool, string, string, error) {
	tmpl, err := templateOf(ctx, r.Client, ks)
	if apierrors.IsNotFound(err) {
		return false, ReasonTemplateNotFound, fmt.Sprintf("JupyterKernelTemplate %s not found: create it or fix spec.template", templateKey(ks)), nil
	}
	if err != nil {
		return false, "", "", err
	}
	probe := &ejv1.JupyterKernel{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: ks.Namespace}}
	probe.Spec.KernelSpec = &ejv1.ObjectRef{Name: ks.Name, Namespace: ks.Namespace}
	pod, err := desiredKernelPod(kernelSources{kernel: probe, spec: ks, template: tmpl})
	if err != nil {
		return false, ReasonInvalidSpec, err.Error(), nil
	}
	c := pod.Spec.Containers[mainContainer(&pod.Spec, ejv1.KernelContainerName)]
	return true, ReasonValid, fmt.Sprintf("kernels run %s in container %s", c.Image, c.Name), nil
}

func (r *KernelSpecReconciler) specsOfTemplate(ctx context.Context, o client.Object) []reconcile.Request {
	specs := &ejv1.JupyterKernelSpecList{}
	if err := r.List(ctx, specs, client.MatchingFields{indexTemplate: client.ObjectKeyFromObject(o).String()}); err != nil {
		logf.FromContext(ctx).Error(err, "listing kernelspecs of a template", "template", client.ObjectKeyFromObject(o))
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(specs.Items))
	for i := range specs.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&specs.Items[i])})
	}
	return reqs
}

// KernelTemplateReconciler says in each JupyterKernelTemplate's Ready condition whether its
// pod template can be used: it merges with a kernelspec's settings into a complete pod.
type KernelTemplateReconciler struct {
	client.Client
}

func (r *KernelTemplateReconciler) setup(mgr manager.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("jupyterkerneltemplate").
		For(&ejv1.JupyterKernelTemplate{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *KernelTemplateReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	t := &ejv1.JupyterKernelTemplate{}
	if err := r.Get(ctx, req.NamespacedName, t); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	orig := t.DeepCopy()
	ok, reason, message := checkTemplate(t)
	setCondition(&t.Status.Conditions, t.Generation, ejv1.ConditionReady, ok, reason, message)
	t.Status.ObservedGeneration = t.Generation
	_, err := patchStatus(ctx, r.Client, t, orig, func(o client.Object) any { return o.(*ejv1.JupyterKernelTemplate).Status })
	return finish(ctrl.Result{}, err)
}

// checkTemplate merges a template with a kernelspec that sets only the command, as the kernel
// reconciler would: the template must give the kernel container an image, or leave it to
// kernelspecs (then the message says so).
func checkTemplate(t *ejv1.JupyterKernelTemplate) (bool, string, string) {
	probe := &ejv1.JupyterKernel{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: t.Namespace}}
	ks := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: t.Namespace}}
	ks.Spec.Command = []string{"kernel", ejv1.ConnectionFilePlaceholder}
	ks.Spec.Image = "probe"
	pod, err := desiredKernelPod(kernelSources{kernel: probe, spec: ks, template: t})
	if err != nil {
		return false, ReasonInvalidSpec, err.Error()
	}
	name := pod.Spec.Containers[mainContainer(&pod.Spec, ejv1.KernelContainerName)].Name
	return true, ReasonValid, fmt.Sprintf("kernels run in container %s", name)
}
