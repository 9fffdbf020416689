package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// Paths the webhooks are served on (config/webhook names them).
const (
	PathMutateKernelPod   = "/mutate-kernel-pod"
	PathValidateKernelPod = "/validate-kernel-pod"
	PathValidatePrefix    = "/validate-kubeflow-tkestack-io-v1alpha1-"
)

// handlers are the admission handlers, sharing a reader and the policy.
type handlers struct {
	reader  client.Reader
	policy  *PolicyStore
	opts    MutateOptions
	decoder admission.Decoder
}

// kernelSpecOf finds the kernelspec a kernel pod names (nil when it names none or it is gone).
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
	if err := h.reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, ks); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("JupyterKernelSpec %s/%s not found: the pod gets the launcher and the team's default GPUs", ns, name), nil
		}
		return nil, "", err
	}
	return ks, "", nil
}

// mutatePod injects the launcher, GPUs and tolerations into kernel pods.
func (h *handlers) mutatePod(ctx context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := h.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if pod.Namespace == "" {
		pod.Namespace = req.Namespace
	}
	if !IsKernelPod(pod) {
		return admission.Allowed("not a kernel pod")
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
		return admission.Errored(http.StatusInternalServerError, err)
	}
	resp := admission.PatchResponseFromRaw(req.Object.Raw, raw)
	if warning != "" {
		resp.Warnings = append(resp.Warnings, warning)
	}
	logf.FromContext(ctx).V(1).Info("kernel pod mutated", "pod", pod.Name, "namespace", pod.Namespace, "team", rules.Team)
	return resp
}

// validatePod refuses kernel pods that ask for more GPUs than their team allows.
func (h *handlers) validatePod(ctx context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := h.decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	if !IsKernelPod(pod) {
		return admission.Allowed("not a kernel pod")
	}
	ns := pod.Namespace
	if ns == "" {
		ns = req.Namespace
	}
	rules, err := h.policy.Rules(ctx, ns)
	if err != nil {
		return admission.Denied(err.Error())
	}
	return response(schema.GroupKind{Kind: "Pod"}, pod.Name, ValidateKernelPod(pod, rules), nil)
}

// validateCR validates one of the five kinds.
func (h *handlers) validateCR(ctx context.Context, req admission.Request) admission.Response {
	look := h.lookups(ctx)
	var errs field.ErrorList
	var warnings []string
	var name string
	decode := func(obj runtime.Object) bool { return h.decoder.Decode(req, obj) == nil }
	switch req.Kind.Kind {
	case "JupyterKernelSpec":
		ks := &ejv1.JupyterKernelSpec{}
		if !decode(ks) {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the %s", req.Kind.Kind))
		}
		if ks.Namespace == "" {
			ks.Namespace = req.Namespace
		}
		rules, err := h.policy.Rules(ctx, ks.Namespace)
		if err != nil {
			return admission.Denied(err.Error())
		}
		name = ks.Name
		errs, warnings = ValidateKernelSpec(ks, rules, look)
	case "JupyterKernelTemplate":
		t := &ejv1.JupyterKernelTemplate{}
		if !decode(t) {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the %s", req.Kind.Kind))
		}
		name, errs = t.Name, ValidateKernelTemplate(t)
	case "JupyterGateway":
		gw := &ejv1.JupyterGateway{}
		if !decode(gw) {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the %s", req.Kind.Kind))
		}
		if gw.Namespace == "" {
			gw.Namespace = req.Namespace
		}
		name = gw.Name
		errs, warnings = ValidateGateway(gw, look)
	case "JupyterNotebook":
		nb := &ejv1.JupyterNotebook{}
		if !decode(nb) {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the %s", req.Kind.Kind))
		}
		if nb.Namespace == "" {
			nb.Namespace = req.Namespace
		}
		name = nb.Name
		errs, warnings = ValidateNotebook(nb, look)
	case "JupyterKernel":
		k := &ejv1.JupyterKernel{}
		if !decode(k) {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("decoding the %s", req.Kind.Kind))
		}
		if k.Namespace == "" {
			k.Namespace = req.Namespace
		}
		name = k.Name
		errs, warnings = ValidateKernel(k, look)
	default:
		return admission.Allowed("not a kind this webhook validates")
	}
	return response(ejv1.GroupVersion.WithKind(req.Kind.Kind).GroupKind(), name, errs, warnings)
}

// response turns validation results into an admission response: Invalid with every field
// error, or allowed with the warnings.
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

// lookups reads referenced objects through the (cached) reader.
func (h *handlers) lookups(ctx context.Context) Lookups {
	exists := func(obj client.Object) func(string, string) bool {
		return func(ns, name string) bool {
			err := h.reader.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj.DeepCopyObject().(client.Object))
			return err == nil || !apierrors.IsNotFound(err)
		}
	}
	return Lookups{
		KernelSpec:     exists(&ejv1.JupyterKernelSpec{}),
		KernelTemplate: exists(&ejv1.JupyterKernelTemplate{}),
		Gateway:        exists(&ejv1.JupyterGateway{}),
	}
}
