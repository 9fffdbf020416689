package webhook

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// Lookups tell validation what exists, for the references it reports. Each returns false when
// the object does not exist.
type Lookups struct {
	KernelSpec     func(namespace, name string) bool
	KernelTemplate func(namespace, name string) bool
	Gateway        func(namespace, name string) bool
}

func (l Lookups) has(f func(string, string) bool, ns, name string) bool {
	return f == nil || f(ns, name)
}

// isGPUResource reports whether a resource name is a GPU (or GPU slice) under the team's rules.
func isGPUResource(name corev1.ResourceName, rules Rules) bool {
	if name == rules.ResourceName {
		return true
	}
	n := strings.ToLower(string(name))
	_, res, ok := strings.Cut(n, "/")
	return ok && (strings.Contains(res, "gpu") || strings.HasPrefix(res, "mig-"))
}

// ValidateKernelPod checks a kernel pod's GPUs against its team's rules: no container may ask
// for more than the team's maximum, nor for another kind of GPU than the team's.
func ValidateKernelPod(pod *corev1.Pod, rules Rules) field.ErrorList {
	var errs field.ErrorList
	if !IsKernelPod(pod) {
		return nil
	}
	for i, c := range pod.Spec.Containers {
		for _, list := range []struct {
			name string
			rl   corev1.ResourceList
		}{{"limits", c.Resources.Limits}, {"requests", c.Resources.Requests}} {
			for res, q := range list.rl {
				if !isGPUResource(res, rules) || q.IsZero() {
					continue
				}
				path := field.NewPath("spec", "containers").Index(i).Child("resources", list.name).Key(string(res))
				if res != rules.ResourceName {
					errs = append(errs, field.Invalid(path, q.String(),
						fmt.Sprintf("team %s's kernels use %s, not %s: ask for %s", rules.Team, rules.ResourceName, res, rules.ResourceName)))
					continue
				}
				if rules.MaxPerKernel >= 0 && q.Value() > int64(rules.MaxPerKernel) {
					errs = append(errs, field.Invalid(path, q.String(),
						fmt.Sprintf("team %s allows at most %d %s per kernel: ask for fewer, or change the team's gpu.maxPerKernel", rules.Team, rules.MaxPerKernel, res)))
				}
			}
		}
	}
	return errs
}

// hasPlaceholder reports whether argv passes the connection file.
func hasPlaceholder(argv []string) bool {
	return slices.ContainsFunc(argv, func(a string) bool { return strings.Contains(a, ejv1.ConnectionFilePlaceholder) })
}

// Enterprise Gateway's placeholders, which elastic-jupyter's launcher does not fill in.
var egPlaceholders = []string{"{response_address}", "{port_range}", "{kernel_id}", "{public_key}"}

// ValidateKernelSpec checks what the schema cannot: the argv passes the connection file, GPUs
// within the team's maximum and of the team's kind. Warnings report a missing template.
func ValidateKernelSpec(ks *ejv1.JupyterKernelSpec, rules Rules, look Lookups) (field.ErrorList, []string) {
	var errs field.ErrorList
	var warnings []string
	spec := field.NewPath("spec")
	if !hasPlaceholder(ks.Spec.Command) {
		msg := fmt.Sprintf("must pass the connection file as %s, for example [\"python3\", \"-m\", \"ipykernel_launcher\", \"-f\", \"%s\"]",
			ejv1.ConnectionFilePlaceholder, ejv1.ConnectionFilePlaceholder)
		for _, p := range egPlaceholders {
			if slices.ContainsFunc(ks.Spec.Command, func(a string) bool { return strings.Contains(a, p) }) {
				msg += fmt.Sprintf("; %s is Enterprise Gateway's launcher protocol, which elastic-jupyter replaces with its own kernel launcher: give the kernel's own argv", p)
				break
			}
		}
		errs = append(errs, field.Invalid(spec.Child("command"), ks.Spec.Command, msg))
	}
	if r := ks.Spec.Resources; r != nil && r.GPUs != nil && *r.GPUs > 0 {
		res := rules.ResourceName
		if r.GPUResource != "" {
			res = r.GPUResource
			if r.GPUResource != rules.ResourceName {
				errs = append(errs, field.Invalid(spec.Child("resources", "gpuResource"), r.GPUResource,
					fmt.Sprintf("team %s's kernels use %s: set gpuResource to %s or leave it empty", rules.Team, rules.ResourceName, rules.ResourceName)))
			}
		}
		if rules.MaxPerKernel >= 0 && *r.GPUs > rules.MaxPerKernel {
			errs = append(errs, field.Invalid(spec.Child("resources", "gpus"), *r.GPUs,
				fmt.Sprintf("team %s allows at most %d %s per kernel: ask for fewer, or change the team's gpu.maxPerKernel", rules.Team, rules.MaxPerKernel, res)))
		}
	}
	if t := ks.Spec.Template; t != nil && t.Name != "" {
		ns := t.Namespace
		if ns == "" {
			ns = ks.Namespace
		}
		if !look.has(look.KernelTemplate, ns, t.Name) {
			warnings = append(warnings, fmt.Sprintf("spec.template: JupyterKernelTemplate %s/%s does not exist (yet): kernels of this spec wait until it does", ns, t.Name))
		}
	}
	if ks.Spec.Image == "" && ks.Spec.Template == nil {
		warnings = append(warnings, "spec.image is empty and there is no template: kernels need an image from one of them")
	}
	return errs, warnings
}

// ValidateKernelTemplate checks that the template has a container to run the kernel in.
func ValidateKernelTemplate(t *ejv1.JupyterKernelTemplate) field.ErrorList {
	if t.Spec.Template == nil || len(t.Spec.Template.Spec.Containers) == 0 {
		return field.ErrorList{field.Required(field.NewPath("spec", "template", "spec", "containers"),
			fmt.Sprintf("a kernel template needs a container to run the kernel in (named %q, or the first)", ejv1.KernelContainerName))}
	}
	return nil
}

// ValidateGateway checks that the default kernel is one the gateway offers; warnings report
// kernelspecs that do not exist and a cluster role in place of the least-privilege Role.
func ValidateGateway(gw *ejv1.JupyterGateway, look Lookups) (field.ErrorList, []string) {
	var errs field.ErrorList
	var warnings []string
	spec := field.NewPath("spec")
	if d := gw.Spec.DefaultKernel; d != nil && len(gw.Spec.Kernels) > 0 && !slices.Contains(gw.Spec.Kernels, *d) {
		errs = append(errs, field.Invalid(spec.Child("defaultKernel"), *d,
			fmt.Sprintf("must be one of spec.kernels %v, or left empty (the first is the default)", gw.Spec.Kernels)))
	}
	for i, k := range gw.Spec.Kernels {
		if !look.has(look.KernelSpec, gw.Namespace, k) {
			warnings = append(warnings, fmt.Sprintf("%s: JupyterKernelSpec %s/%s does not exist (yet); clients will not see it until it does",
				spec.Child("kernels").Index(i), gw.Namespace, k))
		}
	}
	if gw.Spec.ClusterRole != nil && *gw.Spec.ClusterRole != "" {
		warnings = append(warnings, fmt.Sprintf("spec.clusterRole: the gateway gets ClusterRole %s instead of its least-privilege Role", *gw.Spec.ClusterRole))
	}
	if strings.Contains(gw.Spec.Image, "enterprise-gateway") {
		warnings = append(warnings, fmt.Sprintf("spec.image: %s is Jupyter Enterprise Gateway's image; elastic-jupyter runs its own gateway, so leave spec.image empty", gw.Spec.Image))
	}
	return errs, warnings
}

// ValidateNotebook warns about credentials written into the object and a missing gateway.
func ValidateNotebook(nb *ejv1.JupyterNotebook, look Lookups) (field.ErrorList, []string) {
	var warnings []string
	if a := nb.Spec.Auth; a != nil {
		if a.Token != nil || a.Password != nil {
			warnings = append(warnings, "spec.auth.token/password: stored in plain text in this object; put them in a Secret and use spec.auth.secretRef")
		}
		if a.Mode == ejv1.ModeJupyterAuthDisable && (a.Token != nil || a.Password != nil || a.SecretRef != nil) {
			warnings = append(warnings, "spec.auth: mode is disable, so the token, password and secretRef are ignored")
		}
	}
	if g := nb.Spec.Gateway; g != nil && g.Name != "" {
		ns := g.Namespace
		if ns == "" {
			ns = nb.Namespace
		}
		if !look.has(look.Gateway, ns, g.Name) {
			warnings = append(warnings, fmt.Sprintf("spec.gateway: JupyterGateway %s/%s does not exist (yet); the notebook server cannot start kernels until it does", ns, g.Name))
		}
	}
	return nil, warnings
}

// ValidateKernel checks that a kernel names a kernelspec or brings a template with a container.
func ValidateKernel(k *ejv1.JupyterKernel, look Lookups) (field.ErrorList, []string) {
	var errs field.ErrorList
	var warnings []string
	spec := field.NewPath("spec")
	if k.Spec.KernelSpec == nil && (k.Spec.Template == nil || len(k.Spec.Template.Spec.Containers) == 0) {
		errs = append(errs, field.Required(spec.Child("kernelSpec"), "name a JupyterKernelSpec, or give spec.template a container to run the kernel in"))
	}
	if ref := k.Spec.KernelSpec; ref != nil {
		ns := ref.Namespace
		if ns == "" {
			ns = k.Namespace
		}
		if !look.has(look.KernelSpec, ns, ref.Name) {
			warnings = append(warnings, fmt.Sprintf("spec.kernelSpec: JupyterKernelSpec %s/%s does not exist (yet); the kernel waits until it does", ns, ref.Name))
		}
	}
	return errs, warnings
}
