package webhook

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// Lookups tell validation what exists, for the references it reports. Each returns false when
// the object does not exist; a nil func means "exists".
type Lookups struct {
	// KernelSpec reports whether a JupyterKernelSpec exists.
	KernelSpec func(namespace, name string) bool
	// KernelTemplate reports whether a JupyterKernelTemplate exists.
	KernelTemplate func(namespace, name string) bool
	// Gateway reports whether a JupyterGateway exists.
	Gateway func(namespace, name string) bool
}

func (l Lookups) has(f func(string, string) bool, ns, name string) bool {
	return f == nil || f(ns, name)
}

// ipykernelArgv is the example argv messages give.
var ipykernelArgv = fmt.Sprintf(`["python3", "-m", "ipykernel_launcher", "-f", "%s"]`, ejv1.ConnectionFilePlaceholder)

// Enterprise Gateway's argv placeholders, which belong to its remote launchers; elastic-jupyter
// runs the kernel's own argv under its kernel launcher instead.
var egPlaceholders = []string{"{response_address}", "{port_range}", "{kernel_id}", "{public_key}"}

// hasPlaceholder reports whether argv passes the connection file.
func hasPlaceholder(argv []string) bool {
	return slices.ContainsFunc(argv, func(a string) bool { return strings.Contains(a, ejv1.ConnectionFilePlaceholder) })
}

// ValidateKernelPod checks a kernel pod against its team's rules: no container asks for more
// GPUs than the team's maximum nor for another kind of GPU than the team's, and no container
// runs as root or privileged. Pods that are not kernel pods are never judged.
func ValidateKernelPod(pod *corev1.Pod, rules Rules) field.ErrorList {
	if !IsKernelPod(pod) {
		return nil
	}
	spec := field.NewPath("spec")
	errs := validatePodGPUs(spec, &pod.Spec, rules)
	psc := pod.Spec.SecurityContext
	if psc != nil && psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		errs = append(errs, field.Invalid(spec.Child("securityContext", "runAsUser"), 0,
			"kernels run users' code and never as root: set a non-zero uid, or leave it empty for the default"))
	}
	for _, list := range []struct {
		name string
		cs   []corev1.Container
	}{{"initContainers", pod.Spec.InitContainers}, {"containers", pod.Spec.Containers}} {
		for i, c := range list.cs {
			sc := c.SecurityContext
			if sc == nil {
				continue
			}
			p := spec.Child(list.name).Index(i).Child("securityContext")
			if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
				errs = append(errs, field.Invalid(p.Child("runAsUser"), 0,
					"kernels run users' code and never as root: set a non-zero uid, or leave it empty for the default"))
			}
			if sc.Privileged != nil && *sc.Privileged {
				errs = append(errs, field.Forbidden(p.Child("privileged"), "kernel pods run users' code and may not be privileged: remove it"))
			}
		}
	}
	return errs
}

// validatePodGPUs checks every container's GPU limits and requests against the team's rules.
func validatePodGPUs(path *field.Path, spec *corev1.PodSpec, rules Rules) field.ErrorList {
	var errs field.ErrorList
	for _, list := range []struct {
		name string
		cs   []corev1.Container
	}{{"initContainers", spec.InitContainers}, {"containers", spec.Containers}} {
		for i, c := range list.cs {
			for _, rl := range []struct {
				name string
				list corev1.ResourceList
			}{{"limits", c.Resources.Limits}, {"requests", c.Resources.Requests}} {
				for _, res := range slices.Sorted(maps.Keys(rl.list)) {
					q := rl.list[res]
					if !isGPUResource(res, rules) || q.Sign() <= 0 {
						continue
					}
					p := path.Child(list.name).Index(i).Child("resources", rl.name).Key(string(res))
					if res != rules.ResourceName {
						errs = append(errs, field.Invalid(p, q.String(),
							fmt.Sprintf("team %s's kernels use %s, not %s: ask for %s", rules.Team, rules.ResourceName, res, rules.ResourceName)))
						continue
					}
					if rules.MaxPerKernel >= 0 && q.Value() > int64(rules.MaxPerKernel) {
						errs = append(errs, field.Invalid(p, q.String(),
							fmt.Sprintf("team %s allows at most %d %s per kernel: ask for fewer, or raise the team's gpu.maxPerKernel", rules.Team, rules.MaxPerKernel, res)))
					}
				}
			}
		}
	}
	return errs
}

// validateArgv checks a kernel argv: it passes {connection_file} and uses none of Enterprise
// Gateway's placeholders. Each error says what to write instead.
func validateArgv(path *field.Path, argv []string) field.ErrorList {
	var errs field.ErrorList
	for i, a := range argv {
		for _, p := range egPlaceholders {
			if strings.Contains(a, p) {
				errs = append(errs, field.Invalid(path.Index(i), a, fmt.Sprintf(
					"%s belongs to Enterprise Gateway's remote kernel launchers; elastic-jupyter runs the kernel's own argv under its kernel launcher, which passes the connection file: write the kernel's argv with %s, for example %s",
					p, ejv1.ConnectionFilePlaceholder, ipykernelArgv)))
			}
		}
	}
	if len(errs) == 0 && !hasPlaceholder(argv) {
		errs = append(errs, field.Invalid(path, argv, fmt.Sprintf("must pass the connection file as %s, for example %s", ejv1.ConnectionFilePlaceholder, ipykernelArgv)))
	}
	return errs
}

// ValidateKernelSpec checks what the schema cannot: the argv passes the connection file, the
// GPUs are within the team's maximum and of the team's kind. Warnings report a template that
// does not exist and a kernelspec without an image.
func ValidateKernelSpec(ks *ejv1.JupyterKernelSpec, rules Rules, look Lookups) (field.ErrorList, []string) {
	var warnings []string
	spec := field.NewPath("spec")
	errs := validateArgv(spec.Child("command"), ks.Spec.Command)
	if r := ks.Spec.Resources; r != nil {
		if r.GPUResource != "" && r.GPUResource != rules.ResourceName {
			errs = append(errs, field.Invalid(spec.Child("resources", "gpuResource"), r.GPUResource,
				fmt.Sprintf("team %s's kernels use %s: set gpuResource to %s or leave it empty", rules.Team, rules.ResourceName, rules.ResourceName)))
		}
		if r.GPUs != nil && rules.MaxPerKernel >= 0 && *r.GPUs > rules.MaxPerKernel {
			errs = append(errs, field.Invalid(spec.Child("resources", "gpus"), *r.GPUs,
				fmt.Sprintf("team %s allows at most %d %s per kernel: ask for fewer, or raise the team's gpu.maxPerKernel", rules.Team, rules.MaxPerKernel, rules.ResourceName)))
		}
	}
	if t := ks.Spec.Template; t != nil && t.Name != "" {
		ns := t.Namespace
		if ns == "" {
			ns = ks.Namespace
		}
		if !look.has(look.KernelTemplate, ns, t.Name) {
			warnings = append(warnings, fmt.Sprintf("spec.template: JupyterKernelTemplate %s/%s does not exist (yet): kernels of this kernelspec wait until it does", ns, t.Name))
		}
	}
	if ks.Spec.Image == "" && ks.Spec.Template == nil {
		warnings = append(warnings, "spec.image is empty and there is no spec.template: kernels need an image from one of them")
	}
	if ks.Spec.ClassName != "" {
		warnings = append(warnings, fmt.Sprintf("spec.className: %s is Enterprise Gateway's process proxy; elastic-jupyter ignores it", ks.Spec.ClassName))
	}
	return errs, warnings
}

// ValidateKernelTemplate checks that the template has a container to run the kernel in and
// asks for no more GPUs than the team allows.
func ValidateKernelTemplate(t *ejv1.JupyterKernelTemplate, rules Rules) field.ErrorList {
	tp := field.NewPath("spec", "template")
	if t.Spec.Template == nil || len(t.Spec.Template.Spec.Containers) == 0 {
		return field.ErrorList{field.Required(tp.Child("spec", "containers"),
			fmt.Sprintf("a kernel template needs a container to run the kernel in (named %q, or the first)", ejv1.KernelContainerName))}
	}
	return validatePodGPUs(tp.Child("spec"), &t.Spec.Template.Spec, rules)
}

// ValidateGateway checks that the default kernel is one the gateway offers; warnings report
// kernelspecs that do not exist, a cluster role in place of the least-privilege Role and
// Enterprise Gateway's image.
func ValidateGateway(gw *ejv1.JupyterGateway, look Lookups) (field.ErrorList, []string) {
	var errs field.ErrorList
	var warnings []string
	spec := field.NewPath("spec")
	if d := gw.Spec.DefaultKernel; d != nil && *d != "" && len(gw.Spec.Kernels) > 0 && !slices.Contains(gw.Spec.Kernels, *d) {
		errs = append(errs, field.NotSupported(spec.Child("defaultKernel"), *d, gw.Spec.Kernels))
	}
	for i, k := range gw.Spec.Kernels {
		if !look.has(look.KernelSpec, gw.Namespace, k) {
			warnings = append(warnings, fmt.Sprintf("%s: JupyterKernelSpec %s/%s does not exist (yet); clients will not see it until it does",
				spec.Child("kernels").Index(i), gw.Namespace, k))
		}
	}
	if gw.Spec.ClusterRole != nil && *gw.Spec.ClusterRole != "" {
		warnings = append(warnings, fmt.Sprintf("spec.clusterRole: the gateway gets ClusterRole %s on top of its least-privilege Role", *gw.Spec.ClusterRole))
	}
	if strings.Contains(gw.Spec.Image, "enterprise-gateway") {
		warnings = append(warnings, fmt.Sprintf("spec.image: %s is Jupyter Enterprise Gateway's image; elastic-jupyter runs its own gateway, so leave spec.image empty", gw.Spec.Image))
	}
	return errs, warnings
}

// ValidateNotebook warns about credentials written into the object, settings that are
// ignored, and a gateway that does not exist.
func ValidateNotebook(nb *ejv1.JupyterNotebook, look Lookups) (field.ErrorList, []string) {
	var warnings []string
	if a := nb.Spec.Auth; a != nil {
		if a.Token != nil || a.Password != nil {
			warnings = append(warnings, "spec.auth.token/password: stored in plain text in this object, readable by everyone who can read it; put them in a Secret and use spec.auth.secretRef")
		}
		if a.Mode == ejv1.ModeJupyterAuthDisable && (a.Token != nil || a.Password != nil || a.SecretRef != nil) {
			warnings = append(warnings, "spec.auth: mode is disable, so the token, password and secretRef are ignored")
		}
		if a.Mode == ejv1.ModeJupyterAuthDisable {
			warnings = append(warnings, "spec.auth.mode: disable lets anyone who reaches the notebook server run code in it")
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

// ValidateKernel checks that a kernel names a kernelspec or brings a template with a
// container, that its client GPU request (KERNEL_GPUS) is a number within the team's maximum
// where the team honours it, and that its template asks for no more GPUs than allowed.
func ValidateKernel(k *ejv1.JupyterKernel, rules Rules, look Lookups) (field.ErrorList, []string) {
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
	for i, e := range k.Spec.Env {
		if e.Name != KernelGPUsEnv || e.ValueFrom != nil {
			continue
		}
		p := spec.Child("env").Index(i).Child("value")
		if !rules.ClientMayRequest {
			warnings = append(warnings, fmt.Sprintf("%s: %s is ignored: team %s does not let clients choose their GPUs", p, KernelGPUsEnv, rules.Team))
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(e.Value), 10, 32)
		switch {
		case err != nil || n < 0:
			errs = append(errs, field.Invalid(p, e.Value, "KERNEL_GPUS must be a whole number of GPUs, 0 or more"))
		case rules.MaxPerKernel >= 0 && n > int64(rules.MaxPerKernel):
			errs = append(errs, field.Invalid(p, e.Value,
				fmt.Sprintf("team %s allows at most %d %s per kernel: ask for fewer", rules.Team, rules.MaxPerKernel, rules.ResourceName)))
		}
	}
	if k.Spec.Template != nil {
		errs = append(errs, validatePodGPUs(spec.Child("template", "spec"), &k.Spec.Template.Spec, rules)...)
	}
	return errs, warnings
}

// Ratchet keeps an update from being refused for what the old object already had wrong (for
// example after the team policy was tightened): errors of errs that oldErrs has too (same type,
// field and value) become warnings, so that a gateway can still suspend a kernel, or a
// finalizer be removed. New problems stay errors.
func Ratchet(errs, oldErrs field.ErrorList) (field.ErrorList, []string) {
	same := func(a, b *field.Error) bool {
		return a.Type == b.Type && a.Field == b.Field && fmt.Sprint(a.BadValue) == fmt.Sprint(b.BadValue)
	}
	var kept field.ErrorList
	var warnings []string
	for _, e := range errs {
		if slices.ContainsFunc(oldErrs, func(o *field.Error) bool { return same(e, o) }) {
			warnings = append(warnings, "unchanged, so allowed, but invalid: "+e.Error())
			continue
		}
		kept = append(kept, e)
	}
	return kept, warnings
}
