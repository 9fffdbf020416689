package webhook

import (
	"context"
	"errors"
	"net/http"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// deps are what the webhooks share: they fetch the inputs of the pure functions of this
// package (the pod's kernelspec, the team's rules, what references exist) through them.
type deps struct {
	// cache reads through the manager's informers; live reads the API server, for objects
	// created a moment ago that the cache has not seen yet.
	cache, live client.Reader
	policy      *PolicyStore
	opts        MutateOptions
	log         logr.Logger
}

// get reads an object through the cache, and from the API server when the cache does not
// have it (yet).
func (d *deps) get(ctx context.Context, key types.NamespacedName, obj client.Object) error {
	err := d.cache.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) && d.live != nil {
		err = d.live.Get(ctx, key, obj)
	}
	return err
}

// lookups tell validation which referenced objects exist. An error other than NotFound counts
// as "exists": it only costs a warning that is not given.
func (d *deps) lookups(ctx context.Context) Lookups {
	exists := func(newObj func() client.Object) func(string, string) bool {
		return func(ns, name string) bool {
			err := d.get(ctx, types.NamespacedName{Namespace: ns, Name: name}, newObj())
			return !apierrors.IsNotFound(err)
		}
	}
	return Lookups{
		KernelSpec:     exists(func() client.Object { return &ejv1.JupyterKernelSpec{} }),
		KernelTemplate: exists(func() client.Object { return &ejv1.JupyterKernelTemplate{} }),
		Gateway:        exists(func() client.Object { return &ejv1.JupyterGateway{} }),
	}
}

// withNamespace gives obj the namespace of the admission request being served when it has
// none: the API server may send an object without one on CREATE, and the team's rules (and
// every reference) depend on it.
func withNamespace(ctx context.Context, obj client.Object) {
	if obj.GetNamespace() != "" {
		return
	}
	if req, err := admission.RequestFromContext(ctx); err == nil {
		obj.SetNamespace(req.Namespace)
	}
}

// refused turns err into a plain refusal: the typed webhooks answer it as
// admission.Denied(err.Error()) does (HTTP 403, the message as it is). Its chain is cut on
// purpose: a typed webhook answers with the status of any API error err wraps (for example
// the Forbidden of reading the policy ConfigMap), which would lose what the message says
// around it.
func refused(err error) error {
	return errors.New(err.Error())
}

// internalError turns err into the answer admission.Errored(500, err) gives: the webhook
// could not decide, through no fault of the object.
func internalError(err error) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Code: http.StatusInternalServerError, Message: err.Error()}}
}
