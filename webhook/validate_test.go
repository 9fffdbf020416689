package webhook

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
		{"whole GPUs in a MIG team", kernelPod(withGPUs("nvidia.com/gpu", "1")), migTeam,
			[]string{"spec.containers[0].resources.limits[nvidia.com/gpu]"}, "team nlp's kernels use nvidia.com/mig-1g.10gb"},
		{"a CPU team's CPU kernel", kernelPod(), cpuTeam, nil, ""},
		{"not a kernel pod: never judged", kernelPod(withGPUs("nvidia.com/gpu", "8"), func(p *corev1.Pod) { p.Labels = nil }), gpuTeam, nil, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateKernelPod(tc.pod, tc.rules)
			assert.Equal(t, tc.wantFields, fieldPaths(errs))
			if tc.wantMsg != "" {
				assert.Contains(t, errs.ToAggregate().Error(), tc.wantMsg)
			}
		})
	}
}

func TestValidateKernelSpec(t *testing.T) {
	base := func(mods ...func(*ejv1.JupyterKernelSpec)) *ejv1.JupyterKernelSpec {
		ks := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "team-a"}}
		ks.Spec.Image = "python:3"
		ks.Spec.Command = []string{"python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"}
		for _, m := range mods {
			m(ks)
		}
		return ks
	}
	none := Lookups{KernelTemplate: func(string, string) bool { return false }}
	cases := []struct {
		name         string
		ks           *ejv1.JupyterKernelSpec
		rules        Rules
		wantFields   []string
		wantMsg      string
		wantWarnings string
	}{
		{"valid", base(), gpuTeam, nil, "", ""},
		{"argv without {connection_file}", base(func(k *ejv1.JupyterKernelSpec) { k.Spec.Command = []string{"python3", "-m", "ipykernel_launcher"} }), gpuTeam,
			[]string{"spec.command"}, "must pass the connection file as {connection_file}", ""},
		{"Enterprise Gateway's argv", base(func(k *ejv1.JupyterKernelSpec) {
			k.Spec.Command = []string{"python", "launch_kubernetes.py", "--RemoteProcessProxy.response-address", "{response_address}"}
		}), gpuTeam, []string{"spec.command"}, "Enterprise Gateway's launcher protocol", ""},
		{"GPUs over the team's maximum", base(func(k *ejv1.JupyterKernelSpec) { k.Spec.Resources = &ejv1.KernelResources{GPUs: ptr.To[int32](3)} }), gpuTeam,
			[]string{"spec.resources.gpus"}, "team vision allows at most 2 nvidia.com/gpu per kernel", ""},
		{"another GPU kind than the team's", base(func(k *ejv1.JupyterKernelSpec) {
			k.Spec.Resources = &ejv1.KernelResources{GPUs: ptr.To[int32](1), GPUResource: "nvidia.com/gpu"}
		}), migTeam, []string{"spec.resources.gpuResource"}, "team nlp's kernels use nvidia.com/mig-1g.10gb", ""},
		{"a missing template is a warning", base(func(k *ejv1.JupyterKernelSpec) { k.Spec.Template = &corev1.ObjectReference{Name: "later"} }), gpuTeam,
			nil, "", "JupyterKernelTemplate team-a/later does not exist"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs, warnings := ValidateKernelSpec(tc.ks, tc.rules, none)
			assert.Equal(t, tc.wantFields, fieldPaths(errs))
			if tc.wantMsg != "" {
				assert.Contains(t, errs.ToAggregate().Error(), tc.wantMsg)
			}
			if tc.wantWarnings != "" {
				assert.Contains(t, strings.Join(warnings, "\n"), tc.wantWarnings)
			}
		})
	}
}

func TestValidateOtherKinds(t *testing.T) {
	missing := Lookups{
		KernelSpec: func(string, string) bool { return false },
		Gateway:    func(string, string) bool { return false },
	}
	tmpl := &ejv1.JupyterKernelTemplate{}
	assert.Equal(t, []string{"spec.template.spec.containers"}, fieldPaths(ValidateKernelTemplate(tmpl)))
	tmpl.Spec.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kernel"}}}}
	assert.Empty(t, ValidateKernelTemplate(tmpl))

	gw := &ejv1.JupyterGateway{ObjectMeta: metav1.ObjectMeta{Name: "g", Namespace: "team-a"}}
	gw.Spec.Kernels = []string{"python3"}
	gw.Spec.DefaultKernel = ptr.To("r")
	errs, warnings := ValidateGateway(gw, missing)
	assert.Equal(t, []string{"spec.defaultKernel"}, fieldPaths(errs))
	assert.Contains(t, strings.Join(warnings, "\n"), "JupyterKernelSpec team-a/python3 does not exist")
	gw.Spec.DefaultKernel = nil
	gw.Spec.Image = "ccr.ccs.tencentyun.com/kubeflow-oteam/enterprise-gateway:2.5.0"
	errs, warnings = ValidateGateway(gw, Lookups{})
	assert.Empty(t, errs, "the original project's gateway is accepted")
	assert.Contains(t, strings.Join(warnings, "\n"), "Enterprise Gateway's image")

	nb := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "n", Namespace: "team-a"}}
	nb.Spec.Auth = &ejv1.JupyterAuth{Mode: ejv1.ModeJupyterAuthEnable, Token: ptr.To("plain")}
	nb.Spec.Gateway = &corev1.ObjectReference{Name: "g"}
	errs, warnings = ValidateNotebook(nb, missing)
	assert.Empty(t, errs)
	assert.Contains(t, strings.Join(warnings, "\n"), "plain text")
	assert.Contains(t, strings.Join(warnings, "\n"), "JupyterGateway team-a/g does not exist")

	k := &ejv1.JupyterKernel{ObjectMeta: metav1.ObjectMeta{Name: "k", Namespace: "team-a"}}
	errs, _ = ValidateKernel(k, missing)
	assert.Equal(t, []string{"spec.kernelSpec"}, fieldPaths(errs))
	k.Spec.KernelSpec = &ejv1.ObjectRef{Name: "python3"}
	errs, warnings = ValidateKernel(k, missing)
	assert.Empty(t, errs)
	assert.Contains(t, strings.Join(warnings, "\n"), "team-a/python3 does not exist")
}

func TestParsePolicy(t *testing.T) {
	p, err := ParsePolicy([]byte(`
default:
  gpu: {maxPerKernel: 1}
teams:
  - name: vision
    namespaces: [team-vision, team-vision-2]
    gpu: {resourceName: nvidia.com/gpu, defaultPerKernel: 1, maxPerKernel: 2, clientMayRequest: true}
    tolerations: [{key: dedicated, operator: Equal, value: vision, effect: NoSchedule}]
    nodeSelector: {nvidia.com/gpu.product: A100}
  - name: nlp
    namespaces: [team-nlp]
    gpu: {resourceName: nvidia.com/mig-1g.10gb, maxPerKernel: 1}
`))
	require.NoError(t, err)
	v := p.For("team-vision-2")
	assert.Equal(t, "vision", v.Team)
	assert.EqualValues(t, 1, v.DefaultPerKernel)
	assert.EqualValues(t, 2, v.MaxPerKernel)
	assert.True(t, v.ClientMayRequest)
	assert.Equal(t, "A100", v.NodeSelector["nvidia.com/gpu.product"])
	assert.Len(t, v.Tolerations, 1)
	assert.Equal(t, corev1.ResourceName("nvidia.com/mig-1g.10gb"), p.For("team-nlp").ResourceName)
	other := p.For("elsewhere")
	assert.Equal(t, "default", other.Team)
	assert.EqualValues(t, 1, other.MaxPerKernel)
	assert.Equal(t, DefaultGPUResource, other.ResourceName)

	empty, err := ParsePolicy(nil)
	require.NoError(t, err)
	assert.EqualValues(t, -1, empty.For("x").MaxPerKernel, "no policy: no limit")

	for name, bad := range map[string]string{
		"unknown field":        "teams:\n  - name: a\n    namespaces: [x]\n    gpus: {maxPerKernel: 1}\n",
		"negative maximum":     "teams:\n  - name: a\n    namespaces: [x]\n    gpu: {maxPerKernel: -1}\n",
		"default over maximum": "default:\n  gpu: {defaultPerKernel: 2, maxPerKernel: 1}\n",
		"namespace in two":     "teams:\n  - name: a\n    namespaces: [x]\n  - name: b\n    namespaces: [x]\n",
		"team without a name":  "teams:\n  - namespaces: [x]\n",
	} {
		_, err := ParsePolicy([]byte(bad))
		assert.Error(t, err, name)
	}
	_, err = ParsePolicy([]byte("teams:\n  - name: a\n    namespaces: [x]\n    gpu: {maxPerKernel: -1}\n"))
	assert.Contains(t, err.Error(), "teams[0].gpu.maxPerKernel")
	_, err = ParsePolicy([]byte("teams:\n  - name: a\n    namespaces: [x]\n    gpus: {maxPerKernel: 1}\n"))
	assert.Contains(t, err.Error(), "gpus")
}
