package webhook

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// KernelPodWebhook is the mutating and validating webhook of kernel pods: as an
// admission.Defaulter it turns a kernel pod into one that runs under the kernel launcher with
// its team's GPUs and placement (MutateKernelPod); as an admission.Validator it refuses a
// kernel pod that breaks its team's policy (ValidateKernelPod). Pods that are not kernel pods
// pass untouched (the webhook configurations do not send them, but a pod is not our kind).
// Register serves it on PathMutateKernelPod and PathValidateKernelPod.
type KernelPodWebhook struct {
	*deps
}

var (
	_ admission.Defaulter[*corev1.Pod] = &KernelPodWebhook{}
	_ admission.Validator[*corev1.Pod] = &KernelPodWebhook{}
)

// Default mutates a kernel pod that was not mutated yet, in place. The warnings of the
// mutation (a kernelspec that is missing, a client's GPU request that is ignored) go to the
// response through warn, since an admission.Defaulter cannot return any.
func (w *KernelPodWebhook) Default(ctx context.Context, pod *corev1.Pod) error {
	if !IsKernelPod(pod) || IsMutated(pod) {
		return nil
	}
	in := pod.DeepCopy()
	withNamespace(ctx, in)
	spec, warning, err := w.kernelSpecOf(ctx, in)
	if err != nil {
		return internalError(err)
	}
	rules, err := w.policy.Rules(ctx, in.Namespace)
	if err != nil {
		return refused(err)
	}
	out, err := MutateKernelPod(in, spec, rules, w.opts)
	if err != nil {
		return refused(err)
	}
	if warning != "" {
		warn(ctx, warning)
	}
	warn(ctx, MutationWarnings(in, rules)...)
	w.log.V(1).Info("kernel pod mutated", "namespace", in.Namespace, "pod", in.Name, "team", rules.Team,
		"kernelspec", in.Annotations[ejv1.AnnotationKernelSpec], "gpu", podGetsGPU(&out.Spec, rules))
	*pod = *out
	return nil
}

// ValidateCreate refuses a kernel pod that breaks its team's policy, as Invalid with every
// field error.
func (w *KernelPodWebhook) ValidateCreate(ctx context.Context, pod *corev1.Pod) (admission.Warnings, error) {
	if !IsKernelPod(pod) {
		return nil, nil
	}
	withNamespace(ctx, pod)
	rules, err := w.policy.Rules(ctx, pod.Namespace)
	if err != nil {
		return nil, refused(err)
	}
	if errs := ValidateKernelPod(pod, rules); len(errs) > 0 {
		return nil, apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, pod.Name, errs)
	}
	return nil, nil
}

// ValidateUpdate validates the new pod as ValidateCreate does (the webhook configuration
// sends only CREATE).
func (w *KernelPodWebhook) ValidateUpdate(ctx context.Context, _, pod *corev1.Pod) (admission.Warnings, error) {
	return w.ValidateCreate(ctx, pod)
}

// ValidateDelete never holds a deletion up.
func (w *KernelPodWebhook) ValidateDelete(context.Context, *corev1.Pod) (admission.Warnings, error) {
	return nil, nil
}

// kernelSpecOf finds the kernelspec a kernel pod names through AnnotationKernelSpec. It
// returns nil and a warning when the pod names none or it does not exist.
func (w *KernelPodWebhook) kernelSpecOf(ctx context.Context, pod *corev1.Pod) (*ejv1.JupyterKernelSpec, string, error) {
	ref := pod.Annotations[ejv1.AnnotationKernelSpec]
	if ref == "" {
		return nil, "", nil
	}
	ns, name, ok := strings.Cut(ref, "/")
	if !ok {
		ns, name = pod.Namespace, ref
	}
	ks := &ejv1.JupyterKernelSpec{}
	if err := w.get(ctx, types.NamespacedName{Namespace: ns, Name: name}, ks); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Sprintf("metadata.annotations[%s]: JupyterKernelSpec %s/%s not found: the pod gets the kernel launcher (interrupt mode signal) and its team's default GPUs only",
				ejv1.AnnotationKernelSpec, ns, name), nil
		}
		return nil, "", fmt.Errorf("reading JupyterKernelSpec %s/%s: %w", ns, name, err)
	}
	return ks, "", nil
}

// mutatingWebhook is KernelPodWebhook's mutating webhook: controller-runtime's typed
// defaulter webhook, which decodes the pod and answers with the JSON patch from the request's
// pod to the mutated one, with the warnings of Default added. It is built by hand rather than
// through ctrl.NewWebhookManagedBy only because the builder offers no place for those
// warnings. The patch keeps the fields the API server sends that corev1.Pod lacks (a newer
// server's): the defaulter drops the removals that decoding alone would make
// (DefaulterRemoveUnknownOrOmitableFields, which would remove them, is not set).
func (w *KernelPodWebhook) mutatingWebhook(scheme *runtime.Scheme) *admission.Webhook {
	wh := admission.WithDefaulter[*corev1.Pod](scheme, w)
	wh.Handler = withWarnings{wh.Handler}
	return wh
}

// warningsKey is the context key of the warnings of the mutation being served.
type warningsKey struct{}

// warn records warnings for the response of the withWarnings handler serving ctx's request;
// elsewhere (a direct call of Default) it does nothing.
func warn(ctx context.Context, warnings ...string) {
	if list, ok := ctx.Value(warningsKey{}).(*[]string); ok {
		*list = append(*list, warnings...)
	}
}

// withWarnings serves an admission handler and adds to its response the warnings that were
// recorded through warn while it ran.
type withWarnings struct {
	admission.Handler
}

// Handle implements admission.Handler.
func (h withWarnings) Handle(ctx context.Context, req admission.Request) admission.Response {
	var warnings []string
	resp := h.Handler.Handle(context.WithValue(ctx, warningsKey{}, &warnings), req)
	return resp.WithWarnings(warnings...)
}
