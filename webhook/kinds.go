package webhook

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// KernelSpecWebhook is the validating webhook of JupyterKernelSpecs (ValidateKernelSpec).
type KernelSpecWebhook struct {
	kindValidator[*ejv1.JupyterKernelSpec]
}

// newKernelSpecWebhook is the JupyterKernelSpec webhook, reading through d.
func newKernelSpecWebhook(d *deps) *KernelSpecWebhook {
	return &KernelSpecWebhook{kindValidator[*ejv1.JupyterKernelSpec]{deps: d, kind: "JupyterKernelSpec", rules: true,
		check: ValidateKernelSpec}}
}

// KernelTemplateWebhook is the validating webhook of JupyterKernelTemplates
// (ValidateKernelTemplate).
type KernelTemplateWebhook struct {
	kindValidator[*ejv1.JupyterKernelTemplate]
}

// newKernelTemplateWebhook is the JupyterKernelTemplate webhook, reading through d.
func newKernelTemplateWebhook(d *deps) *KernelTemplateWebhook {
	return &KernelTemplateWebhook{kindValidator[*ejv1.JupyterKernelTemplate]{deps: d, kind: "JupyterKernelTemplate", rules: true,
		check: func(t *ejv1.JupyterKernelTemplate, rules Rules, _ Lookups) (field.ErrorList, []string) {
			return ValidateKernelTemplate(t, rules), nil
		}}}
}

// GatewayWebhook is the validating webhook of JupyterGateways (ValidateGateway).
type GatewayWebhook struct {
	kindValidator[*ejv1.JupyterGateway]
}

// newGatewayWebhook is the JupyterGateway webhook, reading through d.
func newGatewayWebhook(d *deps) *GatewayWebhook {
	return &GatewayWebhook{kindValidator[*ejv1.JupyterGateway]{deps: d, kind: "JupyterGateway",
		check: withoutRules(ValidateGateway)}}
}

// NotebookWebhook is the validating webhook of JupyterNotebooks (ValidateNotebook).
type NotebookWebhook struct {
	kindValidator[*ejv1.JupyterNotebook]
}

// newNotebookWebhook is the JupyterNotebook webhook, reading through d.
func newNotebookWebhook(d *deps) *NotebookWebhook {
	return &NotebookWebhook{kindValidator[*ejv1.JupyterNotebook]{deps: d, kind: "JupyterNotebook",
		check: withoutRules(ValidateNotebook)}}
}

// KernelWebhook is the validating webhook of JupyterKernels (ValidateKernel), which also
// applies the team's per-user limits to a kernel that starts or resumes (ValidateUserLimits).
type KernelWebhook struct {
	kindValidator[*ejv1.JupyterKernel]
}

// newKernelWebhook is the JupyterKernel webhook, reading through d.
func newKernelWebhook(d *deps) *KernelWebhook {
	w := &KernelWebhook{kindValidator[*ejv1.JupyterKernel]{deps: d, kind: "JupyterKernel", rules: true,
		check: ValidateKernel}}
	w.change = w.userLimits
	return w
}

// withoutRules is the check of a kind whose validation needs no team rules.
func withoutRules[T client.Object](validate func(T, Lookups) (field.ErrorList, []string)) func(T, Rules, Lookups) (field.ErrorList, []string) {
	return func(obj T, _ Rules, look Lookups) (field.ErrorList, []string) { return validate(obj, look) }
}

// kindWebhook is the validating webhook of one of ValidatedKinds, ready to register.
type kindWebhook struct {
	// kind is the kind it validates.
	kind string
	// register serves it on mgr's webhook server, on ValidatePath(kind).
	register func(mgr manager.Manager) error
}

// kindWebhooks are the validating webhooks of ValidatedKinds, one a kind.
func kindWebhooks(d *deps) []kindWebhook {
	return []kindWebhook{
		serveKind(&ejv1.JupyterKernelSpec{}, newKernelSpecWebhook(d)),
		serveKind(&ejv1.JupyterKernelTemplate{}, newKernelTemplateWebhook(d)),
		serveKind(&ejv1.JupyterGateway{}, newGatewayWebhook(d)),
		serveKind(&ejv1.JupyterNotebook{}, newNotebookWebhook(d)),
		serveKind(&ejv1.JupyterKernel{}, newKernelWebhook(d)),
	}
}

// serveKind is v as the validating webhook of obj's kind, registered through
// ctrl.NewWebhookManagedBy on ValidatePath(kind): the path controller-runtime generates too,
// named here so that it cannot drift from config/webhook/manifests.yaml and the chart.
func serveKind[T client.Object](obj T, v interface {
	admission.Validator[T]
	kindName() string
}) kindWebhook {
	return kindWebhook{kind: v.kindName(), register: func(mgr manager.Manager) error {
		return ctrl.NewWebhookManagedBy(mgr, obj).WithValidator(v).WithValidatorCustomPath(ValidatePath(v.kindName())).Complete()
	}}
}

// kindValidator is the admission.Validator of one of our kinds, which the kind's webhook type
// embeds: it refuses an object as Invalid with every field error that check (and change)
// find, and allows it with the warnings otherwise. An update is refused only for what it
// makes worse (see Ratchet); an object on its way out is never held up. When the team's rules
// cannot be had (the policy is invalid, or could not be read), or change fails, the object is
// refused with the error's message.
type kindValidator[T client.Object] struct {
	*deps
	kind string
	// rules says whether check needs the team's rules of the object's namespace; a kind
	// without gets the zero Rules, and is not refused for a broken policy.
	rules bool
	// check validates an object on its own.
	check func(obj T, rules Rules, look Lookups) (field.ErrorList, []string)
	// change, if set, validates the change from old to obj (update false: obj is created and
	// old is the zero T); its errors are not ratcheted.
	change func(ctx context.Context, obj, old T, update bool, rules Rules) (field.ErrorList, error)
}

// kindName is the kind the validator validates.
func (v *kindValidator[T]) kindName() string { return v.kind }

// ValidateCreate validates an object that is created.
func (v *kindValidator[T]) ValidateCreate(ctx context.Context, obj T) (admission.Warnings, error) {
	var none T
	return v.validate(ctx, obj, none, false)
}

// ValidateUpdate validates an update from old to obj.
func (v *kindValidator[T]) ValidateUpdate(ctx context.Context, old, obj T) (admission.Warnings, error) {
	withNamespace(ctx, old)
	return v.validate(ctx, obj, old, true)
}

// ValidateDelete never holds a deletion up.
func (v *kindValidator[T]) ValidateDelete(context.Context, T) (admission.Warnings, error) {
	return nil, nil
}

// validate validates obj, created (update false) or updated from old.
func (v *kindValidator[T]) validate(ctx context.Context, obj, old T, update bool) (admission.Warnings, error) {
	withNamespace(ctx, obj)
	if obj.GetDeletionTimestamp() != nil {
		return nil, nil
	}
	var rules Rules
	if v.rules {
		var err error
		if rules, err = v.policy.Rules(ctx, obj.GetNamespace()); err != nil {
			return nil, refused(err)
		}
	}
	look := v.lookups(ctx)
	errs, warnings := v.check(obj, rules, look)
	if update && len(errs) > 0 {
		oldErrs, _ := v.check(old, rules, look)
		var more []string
		errs, more = Ratchet(errs, oldErrs)
		warnings = append(warnings, more...)
	}
	if v.change != nil {
		more, err := v.change(ctx, obj, old, update, rules)
		if err != nil {
			return nil, refused(err)
		}
		errs = append(errs, more...)
	}
	if len(errs) > 0 {
		return warnings, apierrors.NewInvalid(ejv1.GroupVersion.WithKind(v.kind).GroupKind(), obj.GetName(), errs)
	}
	return warnings, nil
}

// userLimits applies the team's per-user limits to a kernel that starts (update false) or
// resumes (old is suspended, k is not); other changes are never refused for them.
func (w *KernelWebhook) userLimits(ctx context.Context, k, old *ejv1.JupyterKernel, update bool, rules Rules) (field.ErrorList, error) {
	if update && (!old.Spec.Suspend || k.Spec.Suspend) {
		return nil, nil
	}
	if rules.MaxKernelsPerUser < 0 && rules.MaxGPUsPerUser < 0 || k.Spec.User == "" {
		return nil, nil
	}
	list := &ejv1.JupyterKernelList{}
	if err := w.live.List(ctx, list, client.InNamespace(k.Namespace)); err != nil {
		return nil, fmt.Errorf("listing the kernels of user %s: %w", k.Spec.User, err)
	}
	var others []UserKernel
	for i := range list.Items {
		o := &list.Items[i]
		if o.Name == k.Name || o.Spec.User != k.Spec.User || !o.DeletionTimestamp.IsZero() ||
			o.Status.Phase == ejv1.KernelFailed || o.Status.Phase == ejv1.KernelSucceeded {
			continue
		}
		others = append(others, UserKernel{Name: o.Name, Suspended: o.Spec.Suspend, GPUs: KernelGPUs(o, w.kernelSpecOf(ctx, o), rules)})
	}
	return ValidateUserLimits(k, KernelGPUs(k, w.kernelSpecOf(ctx, k), rules), !update, others, rules), nil
}

// kernelSpecOf is the kernelspec a kernel names, or nil.
func (w *KernelWebhook) kernelSpecOf(ctx context.Context, k *ejv1.JupyterKernel) *ejv1.JupyterKernelSpec {
	if k.Spec.KernelSpec == nil || k.Spec.KernelSpec.Name == "" {
		return nil
	}
	ns := k.Spec.KernelSpec.Namespace
	if ns == "" {
		ns = k.Namespace
	}
	ks := &ejv1.JupyterKernelSpec{}
	if w.get(ctx, types.NamespacedName{Namespace: ns, Name: k.Spec.KernelSpec.Name}, ks) != nil {
		return nil
	}
	return ks
}
