package webhook

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// kernelPod is a pod as the controller makes it.
func kernelPod(mods ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "alice-219cfd49", Namespace: "team-a",
			Labels: map[string]string{ejv1.LabelComponent: ejv1.ComponentKernel, ejv1.LabelKernelID: "219cfd49"},
			Annotations: map[string]string{
				ejv1.AnnotationConnectionSecret: "219cfd49-connection",
				ejv1.AnnotationKernelSpec:       "team-a/python3-gpu",
			},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{
				Name: "kernel", Image: "python:3",
				Command: []string{"python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"},
			}},
		},
	}
	for _, m := range mods {
		m(p)
	}
	return p
}

func kernelSpec(gpus *int32, res corev1.ResourceName, mode ejv1.InterruptMode) *ejv1.JupyterKernelSpec {
	ks := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: "python3-gpu", Namespace: "team-a"}}
	ks.Spec.InterruptMode = mode
	if gpus != nil || res != "" {
		ks.Spec.Resources = &ejv1.KernelResources{GPUs: gpus, GPUResource: res}
	}
	return ks
}

var (
	gpuTeam = Rules{Team: "vision", ResourceName: "nvidia.com/gpu", MaxPerKernel: 2,
		Tolerations:  []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "vision", Effect: corev1.TaintEffectNoSchedule}},
		NodeSelector: map[string]string{"nvidia.com/gpu.product": "A100"}}
	migTeam = Rules{Team: "nlp", ResourceName: "nvidia.com/mig-1g.10gb", MaxPerKernel: 1}
	cpuTeam = Rules{Team: "analytics", ResourceName: "nvidia.com/gpu", MaxPerKernel: 0}
)

func TestMutateKernelPod(t *testing.T) {
	cases := []struct {
		name    string
		pod     *corev1.Pod
		spec    *ejv1.JupyterKernelSpec
		rules   Rules
		wantErr string
		check   func(t *testing.T, in, out *corev1.Pod)
	}{
		{
			name: "CPU kernelspec: launcher, no GPU, no toleration", pod: kernelPod(), spec: kernelSpec(nil, "", ""), rules: gpuTeam,
			check: func(t *testing.T, _, out *corev1.Pod) {
				c := out.Spec.Containers[0]
				assert.Equal(t, []string{LauncherBinary, "run", "--connection-file", ConnectionDir + "/connection.json",
					"--runtime-dir", LauncherRuntimeDir, "--ip", "$(POD_IP)", "--control-port", "8778", "--interrupt-mode", "signal", "--",
					"python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"}, c.Command)
				assert.Empty(t, c.Resources.Limits)
				assert.Empty(t, out.Spec.Tolerations)
				assert.Empty(t, out.Spec.NodeSelector)
				require.Len(t, out.Spec.InitContainers, 1)
				assert.Equal(t, InitContainerName, out.Spec.InitContainers[0].Name)
				assert.Equal(t, []string{"/usr/local/bin/kernel-launcher", "install", "/opt/elastic-jupyter/bin"}, out.Spec.InitContainers[0].Command)
				assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
				assert.EqualValues(t, 8778, c.ReadinessProbe.HTTPGet.Port.IntValue())
				assert.True(t, *out.Spec.SecurityContext.RunAsNonRoot)
				assert.EqualValues(t, 1000, *out.Spec.SecurityContext.RunAsUser)
				assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
				var secret *corev1.SecretVolumeSource
				for _, v := range out.Spec.Volumes {
					if v.Secret != nil {
						secret = v.Secret
					}
				}
				require.NotNil(t, secret)
				assert.Equal(t, "219cfd49-connection", secret.SecretName)
				env := map[string]corev1.EnvVar{}
				for _, e := range c.Env {
					env[e.Name] = e
				}
				assert.Equal(t, "status.podIP", env["POD_IP"].ValueFrom.FieldRef.FieldPath)
				assert.Contains(t, env["KERNEL_ID"].ValueFrom.FieldRef.FieldPath, ejv1.LabelKernelID)
				assert.Equal(t, "true", out.Annotations[ejv1.AnnotationLauncherInjected])
			},
		},
		{
			name: "1 GPU: limit, equal request, default and team tolerations, node selector", pod: kernelPod(),
			spec: kernelSpec(ptr.To[int32](1), "", ejv1.InterruptModeMessage), rules: gpuTeam,
			check: func(t *testing.T, _, out *corev1.Pod) {
				c := out.Spec.Containers[0]
				assert.True(t, c.Resources.Limits["nvidia.com/gpu"].Equal(resource.MustParse("1")))
				assert.True(t, c.Resources.Requests["nvidia.com/gpu"].Equal(resource.MustParse("1")))
				assert.Contains(t, out.Spec.Tolerations, DefaultGPUToleration)
				assert.Contains(t, out.Spec.Tolerations, gpuTeam.Tolerations[0])
				assert.Equal(t, "A100", out.Spec.NodeSelector["nvidia.com/gpu.product"])
				assert.Contains(t, strings.Join(c.Command, " "), "--interrupt-mode message")
			},
		},
		{
			name: "MIG profile: the team's resource", pod: kernelPod(), spec: kernelSpec(ptr.To[int32](1), "", ""), rules: migTeam,
			check: func(t *testing.T, _, out *corev1.Pod) {
				c := out.Spec.Containers[0]
				assert.True(t, c.Resources.Limits["nvidia.com/mig-1g.10gb"].Equal(resource.MustParse("1")))
				_, whole := c.Resources.Limits["nvidia.com/gpu"]
				assert.False(t, whole)
				assert.Contains(t, out.Spec.Tolerations, DefaultGPUToleration)
			},
		},
		{
			name: "team maximum exceeded: refused with the limit and the team", pod: kernelPod(),
			spec: kernelSpec(ptr.To[int32](4), "", ""), rules: gpuTeam,
			wantErr: "team vision allows at most 2 per kernel",
		},
		{
			name: "CPU-only team refuses a GPU kernelspec", pod: kernelPod(), spec: kernelSpec(ptr.To[int32](1), "", ""), rules: cpuTeam,
			wantErr: "team analytics allows at most 0",
		},
		{
			name: "team default applies when the kernelspec says nothing",
			pod:  kernelPod(), spec: kernelSpec(nil, "", ""), rules: Rules{Team: "t", ResourceName: "nvidia.com/gpu", DefaultPerKernel: 1, MaxPerKernel: -1},
			check: func(t *testing.T, _, out *corev1.Pod) {
				assert.True(t, out.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"].Equal(resource.MustParse("1")))
			},
		},
		{
			name: "KERNEL_GPUS honoured when the team allows it",
			pod: kernelPod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: KernelGPUsEnv, Value: "2"}}
			}),
			spec: kernelSpec(ptr.To[int32](1), "", ""), rules: func() Rules { r := gpuTeam; r.ClientMayRequest = true; return r }(),
			check: func(t *testing.T, _, out *corev1.Pod) {
				assert.True(t, out.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"].Equal(resource.MustParse("2")))
			},
		},
		{
			name: "KERNEL_GPUS ignored when the team does not allow it",
			pod: kernelPod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: KernelGPUsEnv, Value: "2"}}
			}),
			spec: kernelSpec(ptr.To[int32](1), "", ""), rules: gpuTeam,
			check: func(t *testing.T, _, out *corev1.Pod) {
				assert.True(t, out.Spec.Containers[0].Resources.Limits["nvidia.com/gpu"].Equal(resource.MustParse("1")))
			},
		},
		{
			name: "KERNEL_GPUS above the maximum is refused",
			pod: kernelPod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: KernelGPUsEnv, Value: "8"}}
			}),
			spec: kernelSpec(ptr.To[int32](1), "", ""), rules: func() Rules { r := gpuTeam; r.ClientMayRequest = true; return r }(),
			wantErr: "KERNEL_GPUS asks for 8 GPU(s); team vision allows at most 2",
		},
		{
			name: "tolerations and node selector merged with the template's without duplicates",
			pod: kernelPod(func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{DefaultGPUToleration, {Key: "spot", Operator: corev1.TolerationOpExists}}
				p.Spec.NodeSelector = map[string]string{"nvidia.com/gpu.product": "H100", "zone": "a"}
			}),
			spec: kernelSpec(ptr.To[int32](1), "", ""), rules: gpuTeam,
			check: func(t *testing.T, _, out *corev1.Pod) {
				assert.Len(t, out.Spec.Tolerations, 3, "default (once), the template's spot, the team's dedicated")
				assert.Equal(t, "H100", out.Spec.NodeSelector["nvidia.com/gpu.product"], "the template's choice wins")
				assert.Equal(t, "a", out.Spec.NodeSelector["zone"])
			},
		},
		{
			name: "a non-root security context set by the template is kept",
			pod: kernelPod(func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](4242), RunAsNonRoot: ptr.To(true)}
			}),
			spec: kernelSpec(nil, "", ""), rules: gpuTeam,
			check: func(t *testing.T, _, out *corev1.Pod) {
				assert.EqualValues(t, 4242, *out.Spec.SecurityContext.RunAsUser)
			},
		},
		{
			name: "a kernel pod without a kernelspec still gets the launcher", pod: kernelPod(), spec: nil, rules: gpuTeam,
			check: func(t *testing.T, _, out *corev1.Pod) {
				assert.Equal(t, LauncherBinary, out.Spec.Containers[0].Command[0])
				assert.Empty(t, out.Spec.Containers[0].Resources.Limits)
			},
		},
		{
			name: "an already mutated pod is unchanged",
			pod: func() *corev1.Pod {
				p, err := MutateKernelPod(kernelPod(), kernelSpec(ptr.To[int32](1), "", ""), gpuTeam, MutateOptions{})
				if err != nil {
					panic(err)
				}
				return p
			}(),
			spec: kernelSpec(ptr.To[int32](1), "", ""), rules: gpuTeam,
			check: func(t *testing.T, in, out *corev1.Pod) {
				assert.True(t, equality.Semantic.DeepEqual(in, out), "reinvocation changes nothing")
				assert.Len(t, out.Spec.InitContainers, 1)
			},
		},
		{
			name: "a pod without the kernel label is untouched",
			pod:  kernelPod(func(p *corev1.Pod) { delete(p.Labels, ejv1.LabelComponent) }),
			spec: kernelSpec(ptr.To[int32](1), "", ""), rules: gpuTeam,
			check: func(t *testing.T, in, out *corev1.Pod) {
				assert.True(t, equality.Semantic.DeepEqual(in, out))
			},
		},
		{
			name: "a kernel container without a command is refused",
			pod:  kernelPod(func(p *corev1.Pod) { p.Spec.Containers[0].Command = nil }), rules: gpuTeam,
			wantErr: "spec.containers[0].command",
		},
		{
			name: "a kernel pod without a connection secret is refused",
			pod: kernelPod(func(p *corev1.Pod) {
				delete(p.Annotations, ejv1.AnnotationConnectionSecret)
				delete(p.Labels, ejv1.LabelKernelID)
			}), rules: gpuTeam,
			wantErr: ejv1.AnnotationConnectionSecret,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.pod.DeepCopy()
			out, err := MutateKernelPod(tc.pod, tc.spec, tc.rules, MutateOptions{LauncherImage: "example.com/ej:test"})
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.True(t, equality.Semantic.DeepEqual(in, tc.pod), "the input is not modified")
			tc.check(t, in, out)
			again, err := MutateKernelPod(out, tc.spec, tc.rules, MutateOptions{LauncherImage: "example.com/ej:test"})
			require.NoError(t, err)
			assert.True(t, equality.Semantic.DeepEqual(out, again), "mutating twice changes nothing")
		})
	}
}
