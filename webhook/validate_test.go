package webhook

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/utils/ptr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

func fieldPaths(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field)
	}
	return out
}

// checkResult compares field paths, and looks for a message in the errors and in the warnings.
func checkResult(t *testing.T, errs field.ErrorList, warnings []string, wantFields []string, wantMsg, wantWarning string) {
	t.Helper()
	assert.Equal(t, wantFields, fieldPaths(errs))
	if wantMsg != "" {
		assert.Contains(t, errs.ToAggregate().Error(), wantMsg)
	}
	if wantWarning != "" {
		assert.Contains(t, strings.Join(warnings, "\n"), wantWarning)
	} else {
		assert.Empty(t, warnings)
	}
}

func withGPUs(res corev1.ResourceName, n string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{res: resource.MustParse(n)}
	}
}

func TestValidateKernelPod(t *testing.T) {
	cases := []struct {
		name       string
		pod        *corev1.Pod
		rules      Rules
		wantFields []string
		wantMsg    string
	}{
		{"within the maximum", kernelPod(withGPUs("nvidia.com/gpu", "2")), gpuTeam, nil, ""},
		{"over the maximum", kernelPod(withGPUs("nvidia.com/gpu", "3")), gpuTeam,
			[]string{"spec.containers[0].resources.limits[nvidia.com/gpu]"}, "team vision allows at most 2 nvidia.com/gpu per kernel"},
		{"over the maximum in an init container", kernelPod(func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "warm", Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("4")}}}}
		}), gpuTeam, []string{"spec.initContainers[0].resources.requests[nvidia.com/gpu]"}, "at most 2"},
		{"whole GPUs in a MIG team", kernelPod(withGPUs("nvidia.com/gpu", "1")), migTeam,
			[]string{"spec.containers[0].resources.limits[nvidia.com/gpu]"}, "team nlp's kernels use nvidia.com/mig-1g.10gb, not nvidia.com/gpu"},
		{"another vendor's GPU", kernelPod(withGPUs("amd.com/gpu", "1")), gpuTeam,
			[]string{"spec.containers[0].resources.limits[amd.com/gpu]"}, "team vision's kernels use nvidia.com/gpu"},
		{"a CPU team's CPU kernel", kernelPod(withGPUs(corev1.ResourceCPU, "64")), cpuTeam, nil, ""},
		{"a CPU team's GPU kernel", kernelPod(withGPUs("nvidia.com/gpu", "1")), cpuTeam,
			[]string{"spec.containers[0].resources.limits[nvidia.com/gpu]"}, "team analytics allows at most 0"},
		{"no limit", kernelPod(withGPUs("nvidia.com/gpu", "16")), openTeam, nil, ""},
		{"root in the pod", kernelPod(func(p *corev1.Pod) { p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0)} }), gpuTeam,
			[]string{"spec.securityContext.runAsUser"}, "never as root"},
		{"root in a container, privileged", kernelPod(func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptr.To[int64](0), Privileged: ptr.To(true)}
		}), gpuTeam, []string{"spec.containers[0].securityContext.runAsUser", "spec.containers[0].securityContext.privileged"}, "may not be privileged"},
		{"not a kernel pod: never judged", kernelPod(withGPUs("nvidia.com/gpu", "8"), func(p *corev1.Pod) { p.Labels = nil }), gpuTeam, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, ValidateKernelPod(tc.pod, tc.rules), nil, tc.wantFields, tc.wantMsg, "")
		})
	}
}

func TestValidateKernelSpec(t *testing.T) {
	base := func(mods ...func(*ejv1.JupyterKernelSpec)) *ejv1.JupyterKernelSpec {
		ks := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "team-a"}}
		ks.Spec.Image = "python:3"
		ks.Spec.Command = ipykernel
		for _, m := range mods {
			m(ks)
		}
		return ks
	}
	none := Lookups{KernelTemplate: func(string, string) bool { return false }}
	cases := []struct {
		name        string
		ks          *ejv1.JupyterKernelSpec
		rules       Rules
		wantFields  []string
		wantMsg     string
		wantWarning string
	}{
		{"valid", base(), gpuTeam, nil, "", ""},
		{"GPUs within the maximum", base(func(k *ejv1.JupyterKernelSpec) { k.Spec.Resources = &ejv1.KernelResources{GPUs: ptr.To[int32](2)} }), gpuTeam, nil, "", ""},
		{"argv without {connection_file}", base(func(k *ejv1.JupyterKernelSpec) { k.Spec.Command = []string{"python3", "-m", "ipykernel_launcher"} }), gpuTeam,
			[]string{"spec.command"}, `must pass the connection file as {connection_file}, for example ["python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"]`, ""},
		{"Enterprise Gateway's argv: refused, saying what to write instead", base(func(k *ejv1.JupyterKernelSpec) {
			k.Spec.Command = []string{"python", "launch_kubernetes.py", "--RemoteProcessProxy.kernel-id", "{kernel_id}", "--RemoteProcessProxy.response-address", "{response_address}"}
		}), gpuTeam, []string{"spec.command[3]", "spec.command[5]"}, `write the kernel's argv with {connection_file}, for example ["python3", "-m", "ipykernel_launcher"`, ""},
		{"GPUs over the team's maximum", base(func(k *ejv1.JupyterKernelSpec) { k.Spec.Resources = &ejv1.KernelResources{GPUs: ptr.To[int32](3)} }), gpuTeam,
			[]string{"spec.resources.gpus"}, "team vision allows at most 2 nvidia.com/gpu per kernel", ""},
		{"another GPU kind than the team's", base(func(k *ejv1.JupyterKernelSpec) {
			k.Spec.Resources = &ejv1.KernelResources{GPUs: ptr.To[int32](1), GPUResource: "nvidia.com/gpu"}
		}), migTeam, []string{"spec.resources.gpuResource"}, "team nlp's kernels use nvidia.com/mig-1g.10gb", ""},
		{"a missing template is a warning", base(func(k *ejv1.JupyterKernelSpec) { k.Spec.Template = &corev1.ObjectReference{Name: "later"} }), gpuTeam,
			nil, "", "JupyterKernelTemplate team-a/later does not exist"},
		{"no image and no template is a warning", base(func(k *ejv1.JupyterKernelSpec) { k.Spec.Image = "" }), gpuTeam, nil, "", "spec.image is empty"},
		{"Enterprise Gateway's className is a warning", base(func(k *ejv1.JupyterKernelSpec) {
			k.Spec.ClassName = "enterprise_gateway.services.processproxies.k8s.KubernetesProcessProxy"
		}), gpuTeam, nil, "", "elastic-jupyter ignores it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warnings := ValidateKernelSpec(tc.ks, tc.rules, none)
			checkResult(t, errs, warnings, tc.wantFields, tc.wantMsg, tc.wantWarning)
		})
	}
}

func TestValidateKernelTemplate(t *testing.T) {
	withPod := func(cs ...corev1.Container) *ejv1.JupyterKernelTemplate {
		return &ejv1.JupyterKernelTemplate{Spec: ejv1.JupyterKernelTemplateSpec{Template: &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: cs}}}}
	}
	gpu := func(n string) corev1.Container {
		return corev1.Container{Name: "kernel", Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse(n)}}}
	}
	cases := []struct {
		name       string
		t          *ejv1.JupyterKernelTemplate
		wantFields []string
		wantMsg    string
	}{
		{"no template", &ejv1.JupyterKernelTemplate{}, []string{"spec.template.spec.containers"}, "needs a container to run the kernel in"},
		{"no container", withPod(), []string{"spec.template.spec.containers"}, "needs a container"},
		{"a container", withPod(corev1.Container{Name: "kernel"}), nil, ""},
		{"GPUs within the maximum", withPod(gpu("2")), nil, ""},
		{"GPUs over the maximum", withPod(gpu("3")), []string{"spec.template.spec.containers[0].resources.limits[nvidia.com/gpu]"}, "team vision allows at most 2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkResult(t, ValidateKernelTemplate(tc.t, gpuTeam), nil, tc.wantFields, tc.wantMsg, "")
		})
	}
}

func TestValidateGateway(t *testing.T) {
	missing := Lookups{KernelSpec: func(string, string) bool { return false }}
	gw := func(mods ...func(*ejv1.JupyterGateway)) *ejv1.JupyterGateway {
		g := &ejv1.JupyterGateway{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "team-a"}}
		g.Spec.Kernels = []string{"python3"}
		for _, m := range mods {
			m(g)
		}
		return g
	}
	cases := []struct {
		name        string
		gw          *ejv1.JupyterGateway
		look        Lookups
		wantFields  []string
		wantMsg     string
		wantWarning string
	}{
		{"valid", gw(func(g *ejv1.JupyterGateway) { g.Spec.DefaultKernel = ptr.To("python3") }), Lookups{}, nil, "", ""},
		{"a default kernel the gateway does not offer", gw(func(g *ejv1.JupyterGateway) { g.Spec.DefaultKernel = ptr.To("r") }), Lookups{},
			[]string{"spec.defaultKernel"}, `supported values: "python3"`, ""},
		{"a kernelspec that does not exist", gw(), missing, nil, "", "spec.kernels[0]: JupyterKernelSpec team-a/python3 does not exist"},
		{"a cluster role", gw(func(g *ejv1.JupyterGateway) { g.Spec.ClusterRole = ptr.To("cluster-admin") }), Lookups{}, nil, "", "ClusterRole cluster-admin"},
		{"the original project's gateway image: accepted, with a warning", gw(func(g *ejv1.JupyterGateway) {
			g.Spec.Image = "ccr.ccs.tencentyun.com/kubeflow-oteam/enterprise-gateway:2.5.0"
		}), Lookups{}, nil, "", "Enterprise Gateway's image"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warnings := ValidateGateway(tc.gw, tc.look)
			checkResult(t, errs, warnings, tc.wantFields, tc.wantMsg, tc.wantWarning)
		})
	}
}

func TestValidateNotebook(t *testing.T) {
	missing := Lookups{Gateway: func(string, string) bool { return false }}
	nb := func(auth *ejv1.JupyterAuth, gw *corev1.ObjectReference) *ejv1.JupyterNotebook {
		n := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "team-a"}}
		n.Spec.Auth, n.Spec.Gateway = auth, gw
		return n
	}
	cases := []struct {
		name        string
		nb          *ejv1.JupyterNotebook
		wantWarning string
	}{
		{"a Secret reference", nb(&ejv1.JupyterAuth{Mode: ejv1.ModeJupyterAuthEnable, SecretRef: &corev1.LocalObjectReference{Name: "s"}}, nil), ""},
		{"a literal token", nb(&ejv1.JupyterAuth{Mode: ejv1.ModeJupyterAuthEnable, Token: ptr.To("plain")}, nil), "stored in plain text"},
		{"auth disabled", nb(&ejv1.JupyterAuth{Mode: ejv1.ModeJupyterAuthDisable}, nil), "lets anyone who reaches the notebook server run code"},
		{"a gateway that does not exist", nb(nil, &corev1.ObjectReference{Name: "g"}), "JupyterGateway team-a/g does not exist"},
		{"a gateway in another namespace", nb(nil, &corev1.ObjectReference{Name: "g", Namespace: "shared"}), "JupyterGateway shared/g does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warnings := ValidateNotebook(tc.nb, missing)
			checkResult(t, errs, warnings, nil, "", tc.wantWarning)
			assert.NotContains(t, strings.Join(warnings, "\n"), "plain\"", "the token itself is never repeated")
		})
	}
}

func TestValidateKernel(t *testing.T) {
	missing := Lookups{KernelSpec: func(string, string) bool { return false }}
	kernel := func(mods ...func(*ejv1.JupyterKernel)) *ejv1.JupyterKernel {
		k := &ejv1.JupyterKernel{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "team-a"}}
		k.Spec.KernelSpec = &ejv1.ObjectRef{Name: "python3"}
		for _, m := range mods {
			m(k)
		}
		return k
	}
	gpus := func(v string) func(*ejv1.JupyterKernel) {
		return func(k *ejv1.JupyterKernel) {
			k.Spec.Env = []corev1.EnvVar{{Name: "KERNEL_USERNAME", Value: "alice"}, {Name: KernelGPUsEnv, Value: v}}
		}
	}
	cases := []struct {
		name        string
		k           *ejv1.JupyterKernel
		rules       Rules
		look        Lookups
		wantFields  []string
		wantMsg     string
		wantWarning string
	}{
		{"a kernelspec", kernel(), gpuTeam, Lookups{}, nil, "", ""},
		{"neither kernelspec nor template", kernel(func(k *ejv1.JupyterKernel) { k.Spec.KernelSpec = nil }), gpuTeam, Lookups{},
			[]string{"spec.kernelSpec"}, "name a JupyterKernelSpec, or give spec.template a container", ""},
		{"a template with a container", kernel(func(k *ejv1.JupyterKernel) {
			k.Spec.KernelSpec = nil
			k.Spec.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kernel"}}}}
		}), gpuTeam, Lookups{}, nil, "", ""},
		{"a kernelspec that does not exist", kernel(), gpuTeam, missing, nil, "", "JupyterKernelSpec team-a/python3 does not exist"},
		{"KERNEL_GPUS within the maximum", kernel(gpus("2")), clientTeam, Lookups{}, nil, "", ""},
		{"KERNEL_GPUS over the maximum", kernel(gpus("3")), clientTeam, Lookups{},
			[]string{"spec.env[1].value"}, "team vision allows at most 2 nvidia.com/gpu per kernel", ""},
		{"KERNEL_GPUS not a number", kernel(gpus("many")), clientTeam, Lookups{}, []string{"spec.env[1].value"}, "whole number", ""},
		{"KERNEL_GPUS where the team does not honour it", kernel(gpus("3")), gpuTeam, Lookups{}, nil, "", "KERNEL_GPUS is ignored: team vision"},
		{"a template over the maximum", kernel(func(k *ejv1.JupyterKernel) {
			k.Spec.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kernel",
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("5")}}}}}}
		}), gpuTeam, Lookups{}, []string{"spec.template.spec.containers[0].resources.limits[nvidia.com/gpu]"}, "at most 2", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warnings := ValidateKernel(tc.k, tc.rules, tc.look)
			checkResult(t, errs, warnings, tc.wantFields, tc.wantMsg, tc.wantWarning)
		})
	}
}

func TestRatchet(t *testing.T) {
	over := field.Invalid(field.NewPath("spec", "env").Index(1).Child("value"), "3", "at most 2")
	other := field.Invalid(field.NewPath("spec", "env").Index(1).Child("value"), "4", "at most 2")
	missing := field.Required(field.NewPath("spec", "kernelSpec"), "name one")
	cases := []struct {
		name         string
		errs, old    field.ErrorList
		wantFields   []string
		wantWarnings int
	}{
		{"create or a valid old object: every error stays", field.ErrorList{over}, nil, []string{"spec.env[1].value"}, 0},
		{"the same error as before: allowed with a warning", field.ErrorList{over}, field.ErrorList{over}, nil, 1},
		{"a worse value: refused", field.ErrorList{other}, field.ErrorList{over}, []string{"spec.env[1].value"}, 0},
		{"a new error beside an old one: the new one stays", field.ErrorList{over, missing}, field.ErrorList{over}, []string{"spec.kernelSpec"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warnings := Ratchet(tc.errs, tc.old)
			assert.Equal(t, tc.wantFields, fieldPaths(errs))
			assert.Len(t, warnings, tc.wantWarnings)
		})
	}
}
