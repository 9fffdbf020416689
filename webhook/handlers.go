package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// Paths the webhooks are served on; config/webhook/manifests.yaml names them.
const (
	// PathMutateKernelPod is the mutating webhook of kernel pods.
	PathMutateKernelPod = "/mutate-kernel-pod"
	// PathValidateKernelPod is the validating webhook of kernel pods.
	PathValidateKernelPod = "/validate-kernel-pod"
	// PathValidatePrefix, followed by a kind in lower case, is the validating webhook of
	// that elastic-jupyter kind (for example /validate-kubeflow-tkestack-io-v1alpha1-jupyterkernelspec).
	PathValidatePrefix = "/validate-kubeflow-tkestack-io-v1alpha1-"
)

// handlers are the admission handlers. They fetch the inputs of the pure functions of this
// package (the pod's kernelspec, the team's rules, what references exist) and wrap the results.
type handlers struct {
	// cache reads through the manager's informers; live reads the API server, for objects
	// created a moment ago that the cache has not seen yet.
	cache, live client.Reader
	policy      *PolicyStore
	opts        MutateOptions
	decoder     admission.Decoder
	log         logr.Logger
}

// get reads an object through the cache, and from the API server when the cache does not
// have it (yet).
func (h *handlers) get(ctx context.Context, key types.NamespacedName, obj client.Object) error {
	err := h.cache.Get(ctx, key, obj)
	if apierrors.IsNotFound(err) && h.live != nil {
		err = h.live.Get(ctx, key, obj)
	}
	return err
}

// kernelSpecOf finds the kernelspec a kernel pod names through AnnotationKernelSpec. It
// returns nil and a warning when the pod names none or it does not exist.
func (h *handlers) kernelSpecOf(ctx context.Context, pod *corev1.Pod) (*ejv1.JupyterKernelSpec, string, error) {
	ref := pod.Annotations[ejv1.AnnotationKernelSpec]
	if ref == "" {
		return nil, "", nil
	}
	ns, name, ok := strings.Cut(ref, "/")
	if !ok {
		ns, name = pod.Namespace, ref
	}
	ks := &ejv1.JupyterKernelSpec{}
	if err := h.get(ctx, types.NamespacedName{Namespace: ns, Name: name}, ks); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("metadata.annotations[%s]: JupyterKernelSpec %s/%s not found: the pod gets the kernel launcher (interrupt mode signal) and its team's default GPUs only",
				ejv1.AnnotationKernelSpec, ns, name), nil
		}
		return nil, "", fmt.Errorf("reading JupyterKernelSpec %s/%s: %w", ns, name, err)
	}
	return ks, "", nil
}

// decodePod decodes the request's pod, with its namespace filled in.
func (h *handlers) decodePod(req admission.Request) (*corev1.Pod, error) {
	pod := &corev1.Pod{}
	if err := h.decoder.Decode(req, pod); err != nil {
		return nil, fmt.Errorf("decoding the pod: %w", err)
	}
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	return pod, nil
}

// mutatePod injects the launcher, GPUs and tolerations into kernel pods.
func (h *handlers) mutatePod(ctx context.Context, req admission.Request) admission.Response {
	pod, err := h.decodePod(req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if !IsKernelPod(pod) || IsMutated(pod) {
		return admission.Allowed("nothing to do")
	}
	spec, warning, err := h.kernelSpecOf(ctx, pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	rules, err := h.policy.Rules(ctx, pod.Namespace)
	if err != nil {
		return admission.Denied(err.Error())
	}
	out, err := MutateKernelPod(pod, spec, rules, h.opts)
	if err != nil {
		return admission.Denied(err.Error())
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("encoding the mutated pod: %w", err))
	}
	resp := admission.PatchResponseFromRaw(req.Object.Raw, raw)
	if warning != "" {
		resp.Warnings = append(resp.Warnings, warning)
	}
	resp.Warnings = append(resp.Warnings, MutationWarnings(pod, rules)...)
	h.log.V(1).Info("kernel pod mutated", "namespace", pod.Namespace, "pod", pod.Name, "team", rules.Team,
		"kernelspec", pod.Annotations[ejv1.AnnotationKernelSpec], "gpu", podGetsGPU(&out.Spec, rules))
	return resp
}

// validatePod refuses kernel pods that break their team's policy.
func (h *handlers) validatePod(ctx context.Context, req admission.Request) admission.Response {
	pod, err := h.decodePod(req)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if !IsKernelPod(pod) {
		return admission.Allowed("not a kernel pod")
	}
	rules, err := h.policy.Rules(ctx, pod.Namespace)
	if err != nil {
		return admission.Denied(err.Error())
	}
	return response(schema.GroupKind{Kind: "Pod"}, pod.Name, ValidateKernelPod(pod, rules), nil)
}

// kindValidator validates one elastic-jupyter kind.
type kindValidator struct {
	newObject func() client.Object
	validate  func(ctx context.Context, h *handlers, obj client.Object) (field.ErrorList, []string, error)
}

// kindValidators are the validations of the five kinds, by kind.
var kindValidators = map[string]kindValidator{
	"JupyterKernelSpec": {
		newObject: func() client.Object { return &ejv1.JupyterKernelSpec{} },
		validate: func(ctx context.Context, h *handlers, obj client.Object) (field.ErrorList, []string, error) {
			rules, err := h.policy.Rules(ctx, obj.GetNamespace())
			if err != nil {
				return nil, nil, err
			}
			errs, warnings := ValidateKernelSpec(obj.(*ejv1.JupyterKernelSpec), rules, h.lookups(ctx))
			return errs, warnings, nil
		},
	},
	"JupyterKernelTemplate": {
		newObject: func() client.Object { return &ejv1.JupyterKernelTemplate{} },
		validate: func(ctx context.Context, h *handlers, obj client.Object) (field.ErrorList, []string, error) {
			rules, err := h.policy.Rules(ctx, obj.GetNamespace())
			if err != nil {
				return nil, nil, err
			}
			return ValidateKernelTemplate(obj.(*ejv1.JupyterKernelTemplate), rules), nil, nil
		},
	},
	"JupyterGateway": {
		newObject: func() client.Object { return &ejv1.JupyterGateway{} },
		validate: func(ctx context.Context, h *handlers, obj client.Object) (field.ErrorList, []string, error) {
			errs, warnings := ValidateGateway(obj.(*ejv1.JupyterGateway), h.lookups(ctx))
			return errs, warnings, nil
		},
	},
	"JupyterNotebook": {
		newObject: func() client.Object { return &ejv1.JupyterNotebook{} },
		validate: func(ctx context.Context, h *handlers, obj client.Object) (field.ErrorList, []string, error) {
			errs, warnings := ValidateNotebook(obj.(*ejv1.JupyterNotebook), h.lookups(ctx))
			return errs, warnings, nil
		},
	},
	"JupyterKernel": {
		newObject: func() client.Object { return &ejv1.JupyterKernel{} },
		validate: func(ctx context.Context, h *handlers, obj client.Object) (field.ErrorList, []string, error) {
			rules, err := h.policy.Rules(ctx, obj.GetNamespace())
			if err != nil {
				return nil, nil, err
			}
			errs, warnings := ValidateKernel(obj.(*ejv1.JupyterKernel), rules, h.lookups(ctx))
			return errs, warnings, nil
		},
	},
}

// validateCR validates one of the five kinds. An update is refused only for what it makes
// worse (see Ratchet); an object on its way out is never held up.
func (h *handlers) validateCR(ctx context.Context, req admission.Request) admission.Response {
	v, ok := kindValidators[req.Kind.Kind]
	if !ok || req.Kind.Group != ejv1.GroupVersion.Group {
		return admission.Allowed("not a kind this webhook validates")
	}
	decode := func(raw []byte) (client.Object, error) {
		obj := v.newObject()
		if err := h.decoder.DecodeRaw(runtime.RawExtension{Raw: raw}, obj); err != nil {
			return nil, fmt.Errorf("decoding the %s: %w", req.Kind.Kind, err)
		}
		if obj.GetNamespace() == "" {
			obj.SetNamespace(req.Namespace)
		}
		return obj, nil
	}
	obj, err := decode(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if obj.GetDeletionTimestamp() != nil {
		return admission.Allowed("being deleted")
	}
	errs, warnings, err := v.validate(ctx, h, obj)
	if err != nil {
		return admission.Denied(err.Error())
	}
	var old client.Object
	if req.Operation == admissionv1.Update && len(req.OldObject.Raw) > 0 {
		if old, err = decode(req.OldObject.Raw); err != nil {
			return admission.Errored(http.StatusBadRequest, err)
		}
	}
	if old != nil && len(errs) > 0 {
		oldErrs, _, err := v.validate(ctx, h, old)
		if err != nil {
			return admission.Denied(err.Error())
		}
		var more []string
		errs, more = Ratchet(errs, oldErrs)
		warnings = append(warnings, more...)
	}
	if k, ok := obj.(*ejv1.JupyterKernel); ok {
		limits, err := h.userLimits(ctx, k, old)
		if err != nil {
			return admission.Denied(err.Error())
		}
		errs = append(errs, limits...)
	}
	return response(ejv1.GroupVersion.WithKind(req.Kind.Kind).GroupKind(), obj.GetName(), errs, warnings)
}

// userLimits applies the team's per-user limits to a kernel that starts (old is nil) or
// resumes (old is suspended, k is not); other changes are never refused for them.
func (h *handlers) userLimits(ctx context.Context, k *ejv1.JupyterKernel, old client.Object) (field.ErrorList, error) {
	starting := old == nil
	if !starting {
		o, ok := old.(*ejv1.JupyterKernel)
		if !ok || !o.Spec.Suspend || k.Spec.Suspend {
			return nil, nil
		}
	}
	rules, err := h.policy.Rules(ctx, k.Namespace)
	if err != nil || rules.MaxKernelsPerUser < 0 && rules.MaxGPUsPerUser < 0 || k.Spec.User == "" {
		return nil, err
	}
	list := &ejv1.JupyterKernelList{}
	if err := h.live.List(ctx, list, client.InNamespace(k.Namespace)); err != nil {
		return nil, fmt.Errorf("listing the kernels of user %s: %w", k.Spec.User, err)
	}
	var others []UserKernel
	for i := range list.Items {
		o := &list.Items[i]
		if o.Name == k.Name || o.Spec.User != k.Spec.User || !o.DeletionTimestamp.IsZero() ||
			o.Status.Phase == ejv1.KernelFailed || o.Status.Phase == ejv1.KernelSucceeded {
			continue
		}
		others = append(others, UserKernel{Name: o.Name, Suspended: o.Spec.Suspend, GPUs: KernelGPUs(o, h.kernelSpecOfKernel(ctx, o), rules)})
	}
	return ValidateUserLimits(k, KernelGPUs(k, h.kernelSpecOfKernel(ctx, k), rules), starting, others, rules), nil
}

// kernelSpecOfKernel is the kernelspec a kernel names, or nil.
func (h *handlers) kernelSpecOfKernel(ctx context.Context, k *ejv1.JupyterKernel) *ejv1.JupyterKernelSpec {
	if k.Spec.KernelSpec == nil || k.Spec.KernelSpec.Name == "" {
		return nil
	}
	ns := k.Spec.KernelSpec.Namespace
	if ns == "" {
		ns = k.Namespace
	}
	ks := &ejv1.JupyterKernelSpec{}
	if h.get(ctx, types.NamespacedName{Namespace: ns, Name: k.Spec.KernelSpec.Name}, ks) != nil {
		return nil
	}
	return ks
}

// response turns validation results into an admission response: refused as Invalid with every
// field error, or allowed with the warnings.
func response(gk schema.GroupKind, name string, errs field.ErrorList, warnings []string) admission.Response {
	if len(errs) > 0 {
		status := apierrors.NewInvalid(gk, name, errs).Status()
		resp := admission.Denied(status.Message)
		resp.Result = &status
		resp.Warnings = warnings
		return resp
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// lookups tell validation which referenced objects exist. An error other than NotFound counts
// as "exists": it only costs a warning that is not given.
func (h *handlers) lookups(ctx context.Context) Lookups {
	exists := func(newObj func() client.Object) func(string, string) bool {
		return func(ns, name string) bool {
			err := h.get(ctx, types.NamespacedName{Namespace: ns, Name: name}, newObj())
			return !apierrors.IsNotFound(err)
		}
	}
	return Lookups{
		KernelSpec:     exists(func() client.Object { return &ejv1.JupyterKernelSpec{} }),
		KernelTemplate: exists(func() client.Object { return &ejv1.JupyterKernelTemplate{} }),
		Gateway:        exists(func() client.Object { return &ejv1.JupyterGateway{} }),
	}
}
