package webhook

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

var ipykernel = []string{"python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"}

// kernelPod is a kernel pod as the controller makes it.
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
			Containers:    []corev1.Container{{Name: "kernel", Image: "python:3", Command: append([]string(nil), ipykernel...)}},
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
	ks.Spec.Command = ipykernel
	if gpus != nil || res != "" {
		ks.Spec.Resources = &ejv1.KernelResources{GPUs: gpus, GPUResource: res}
	}
	return ks
}

func withEnv(name, value string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: name, Value: value})
	}
}

var (
	dedicated = corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "vision", Effect: corev1.TaintEffectNoSchedule}
	gpuTeam   = Rules{Team: "vision", ResourceName: "nvidia.com/gpu", MaxPerKernel: 2,
		Tolerations: []corev1.Toleration{dedicated}, NodeSelector: map[string]string{"nvidia.com/gpu.product": "A100"}}
	clientTeam = func() Rules { r := gpuTeam; r.ClientMayRequest = true; return r }()
	migTeam    = Rules{Team: "nlp", ResourceName: "nvidia.com/mig-1g.10gb", MaxPerKernel: 1}
	cpuTeam    = Rules{Team: "analytics", ResourceName: "nvidia.com/gpu", MaxPerKernel: 0}
	openTeam   = Rules{Team: DefaultTeam, ResourceName: DefaultGPUResource, MaxPerKernel: -1}
)

func gpuLimit(c corev1.Container, res corev1.ResourceName) string {
	q, ok := c.Resources.Limits[res]
	if !ok {
		return ""
	}
	r := c.Resources.Requests[res]
	if !q.Equal(r) {
		return "limit " + q.String() + " != request " + r.String()
	}
	return q.String()
}

func env(c corev1.Container) map[string]corev1.EnvVar {
	out := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		out[e.Name] = e
	}
	return out
}

// noGPU checks that the pod got no GPU and none of the placement that comes with one.
func noGPU(t *testing.T, out *corev1.Pod) {
	t.Helper()
	for _, c := range out.Spec.Containers {
		for name := range c.Resources.Limits {
			assert.NotContains(t, string(name), "gpu")
		}
	}
	assert.Empty(t, out.Spec.Tolerations)
	assert.Empty(t, out.Spec.NodeSelector)
	assert.Empty(t, out.Spec.SchedulingGates, "a pod without a GPU does not wait in the GPU queue")
}

func TestMutateKernelPod(t *testing.T) {
	cases := []struct {
		name    string
		pod     *corev1.Pod
		spec    *ejv1.JupyterKernelSpec
		rules   Rules
		opts    MutateOptions
		wantErr []string
		check   func(t *testing.T, out *corev1.Pod)
	}{
		{
			name: "CPU kernelspec: the launcher as the contract says, no GPU, no toleration", pod: kernelPod(), spec: kernelSpec(nil, "", ""), rules: gpuTeam,
			opts: MutateOptions{LauncherImage: "example.com/ej:test"},
			check: func(t *testing.T, out *corev1.Pod) {
				noGPU(t, out)
				c := out.Spec.Containers[0]
				assert.Equal(t, []string{"/opt/elastic-jupyter/bin/kernel-launcher", "run",
					"--connection-file", "/var/run/elastic-jupyter/connection/connection.json",
					"--runtime-dir", "/opt/elastic-jupyter/run", "--ip", "$(POD_IP)", "--control-port", "8778", "--interrupt-mode", "signal", "--",
					"python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"}, c.Command)
				assert.Empty(t, c.Args)
				require.Len(t, out.Spec.InitContainers, 1)
				ic := out.Spec.InitContainers[0]
				assert.Equal(t, "kernel-launcher-install", ic.Name)
				assert.Equal(t, "example.com/ej:test", ic.Image)
				assert.Equal(t, []string{"/usr/local/bin/kernel-launcher", "install", "/opt/elastic-jupyter/bin"}, ic.Command)
				assert.Equal(t, []corev1.VolumeMount{{Name: "kernel-launcher", MountPath: "/opt/elastic-jupyter"}}, ic.VolumeMounts)
				assert.Equal(t, []corev1.Volume{
					{Name: "kernel-launcher", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					{Name: "kernel-connection", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "219cfd49-connection", DefaultMode: ptr.To[int32](0o400)}}},
				}, out.Spec.Volumes)
				assert.Equal(t, []corev1.VolumeMount{
					{Name: "kernel-launcher", MountPath: "/opt/elastic-jupyter"},
					{Name: "kernel-connection", MountPath: "/var/run/elastic-jupyter/connection", ReadOnly: true},
				}, c.VolumeMounts)
				e := env(c)
				assert.Equal(t, "status.podIP", e["POD_IP"].ValueFrom.FieldRef.FieldPath)
				assert.Equal(t, "metadata.labels['kubeflow.tkestack.io/kernel-id']", e["KERNEL_ID"].ValueFrom.FieldRef.FieldPath)
				assert.Equal(t, "/opt/elastic-jupyter/home", e["HOME"].Value)
				assert.Equal(t, []corev1.ContainerPort{{Name: "launcher", ContainerPort: 8778, Protocol: corev1.ProtocolTCP}}, c.Ports)
				assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
				assert.EqualValues(t, 8778, c.ReadinessProbe.HTTPGet.Port.IntValue())
				assert.EqualValues(t, 1, c.ReadinessProbe.PeriodSeconds)
				assert.Equal(t, "/healthz", c.LivenessProbe.HTTPGet.Path)
				assert.EqualValues(t, 8778, c.LivenessProbe.HTTPGet.Port.IntValue())
				psc := out.Spec.SecurityContext
				assert.True(t, *psc.RunAsNonRoot)
				assert.EqualValues(t, 1000, *psc.RunAsUser)
				assert.EqualValues(t, 1000, *psc.RunAsGroup)
				assert.EqualValues(t, 1000, *psc.FSGroup)
				assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
				assert.False(t, *ic.SecurityContext.AllowPrivilegeEscalation)
				assert.Equal(t, "true", out.Annotations[ejv1.AnnotationLauncherInjected])
			},
		},
		{
			name: "1 GPU: limit and equal request, the default and the team's tolerations, the team's node selector, interrupt by message",
			pod:  kernelPod(), spec: kernelSpec(ptr.To[int32](1), "", ejv1.InterruptModeMessage), rules: gpuTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				c := out.Spec.Containers[0]
				assert.Equal(t, "1", gpuLimit(c, "nvidia.com/gpu"))
				assert.Equal(t, []corev1.Toleration{DefaultGPUToleration, dedicated}, out.Spec.Tolerations)
				assert.Equal(t, map[string]string{"nvidia.com/gpu.product": "A100"}, out.Spec.NodeSelector)
				assert.Equal(t, []corev1.PodSchedulingGate{{Name: ejv1.GPUQueueGate}}, out.Spec.SchedulingGates, "it waits in the GPU queue until the controller releases it")
				assert.Subset(t, c.Command, []string{"--interrupt-mode", "message"})
				assert.Equal(t, "message", c.Command[11])
			},
		},
		{
			name: "MIG profile: the team's resource, never a whole GPU", pod: kernelPod(), spec: kernelSpec(ptr.To[int32](1), "", ""), rules: migTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				c := out.Spec.Containers[0]
				assert.Equal(t, "1", gpuLimit(c, "nvidia.com/mig-1g.10gb"))
				assert.Empty(t, gpuLimit(c, "nvidia.com/gpu"))
				assert.Equal(t, []corev1.Toleration{DefaultGPUToleration}, out.Spec.Tolerations)
				assert.Equal(t, []corev1.PodSchedulingGate{{Name: ejv1.GPUQueueGate}}, out.Spec.SchedulingGates)
			},
		},
		{
			name: "a kernelspec naming the team's MIG profile", pod: kernelPod(), spec: kernelSpec(ptr.To[int32](1), "nvidia.com/mig-1g.10gb", ""), rules: migTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				assert.Equal(t, "1", gpuLimit(out.Spec.Containers[0], "nvidia.com/mig-1g.10gb"))
			},
		},
		{
			name: "a kernelspec naming another GPU than the team's: refused", pod: kernelPod(), spec: kernelSpec(ptr.To[int32](1), "nvidia.com/gpu", ""), rules: migTeam,
			wantErr: []string{"kernelspec team-a/python3-gpu", "team nlp's kernels use nvidia.com/mig-1g.10gb", "set gpuResource to nvidia.com/mig-1g.10gb or leave it empty"},
		},
		{
			name: "team maximum exceeded: refused with the limit, the team and the source", pod: kernelPod(),
			spec: kernelSpec(ptr.To[int32](4), "", ""), rules: gpuTeam,
			wantErr: []string{"spec.containers[0].resources.limits[nvidia.com/gpu]", "kernelspec team-a/python3-gpu asks for 4 GPU(s)", "team vision allows at most 2 per kernel", "gpu.maxPerKernel"},
		},
		{
			name: "a CPU-only team refuses a GPU kernelspec", pod: kernelPod(), spec: kernelSpec(ptr.To[int32](1), "", ""), rules: cpuTeam,
			wantErr: []string{"team analytics allows at most 0 per kernel"},
		},
		{
			name: "the team's default applies when the kernelspec says nothing",
			pod:  kernelPod(), spec: kernelSpec(nil, "", ""), rules: Rules{Team: "t", ResourceName: "nvidia.com/gpu", DefaultPerKernel: 1, MaxPerKernel: -1},
			check: func(t *testing.T, out *corev1.Pod) {
				assert.Equal(t, "1", gpuLimit(out.Spec.Containers[0], "nvidia.com/gpu"))
				assert.Equal(t, []corev1.Toleration{DefaultGPUToleration}, out.Spec.Tolerations)
			},
		},
		{
			name: "a kernelspec's explicit 0 wins over the team's default",
			pod:  kernelPod(), spec: kernelSpec(ptr.To[int32](0), "", ""), rules: Rules{Team: "t", ResourceName: "nvidia.com/gpu", DefaultPerKernel: 1, MaxPerKernel: -1},
			check: func(t *testing.T, out *corev1.Pod) { noGPU(t, out) },
		},
		{
			name: "KERNEL_GPUS honoured where the team allows it, up to the maximum",
			pod:  kernelPod(withEnv(KernelGPUsEnv, "2")), spec: kernelSpec(ptr.To[int32](1), "", ""), rules: clientTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				assert.Equal(t, "2", gpuLimit(out.Spec.Containers[0], "nvidia.com/gpu"))
			},
		},
		{
			name: "KERNEL_GPUS=0 gives a CPU kernel where the team allows it",
			pod:  kernelPod(withEnv(KernelGPUsEnv, "0")), spec: kernelSpec(ptr.To[int32](1), "", ""), rules: clientTeam,
			check: func(t *testing.T, out *corev1.Pod) { noGPU(t, out) },
		},
		{
			name: "KERNEL_GPUS ignored where the team does not allow it",
			pod:  kernelPod(withEnv(KernelGPUsEnv, "2")), spec: kernelSpec(ptr.To[int32](1), "", ""), rules: gpuTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				assert.Equal(t, "1", gpuLimit(out.Spec.Containers[0], "nvidia.com/gpu"))
			},
		},
		{
			name: "KERNEL_GPUS ignored, even over the maximum, where the team does not allow it",
			pod:  kernelPod(withEnv(KernelGPUsEnv, "8")), spec: kernelSpec(nil, "", ""), rules: gpuTeam,
			check: func(t *testing.T, out *corev1.Pod) { noGPU(t, out) },
		},
		{
			name: "KERNEL_GPUS above the maximum: refused",
			pod:  kernelPod(withEnv(KernelGPUsEnv, "8")), spec: kernelSpec(ptr.To[int32](1), "", ""), rules: clientTeam,
			wantErr: []string{"KERNEL_GPUS asks for 8 GPU(s); team vision allows at most 2 per kernel"},
		},
		{
			name: "KERNEL_GPUS that is not a number: refused",
			pod:  kernelPod(withEnv(KernelGPUsEnv, "two")), spec: kernelSpec(nil, "", ""), rules: clientTeam,
			wantErr: []string{"spec.containers[0].env[0]", `KERNEL_GPUS="two" is not a number of GPUs`},
		},
		{
			name: "tolerations and node selector merged with the template's without duplicates",
			pod: kernelPod(func(p *corev1.Pod) {
				p.Spec.Tolerations = []corev1.Toleration{DefaultGPUToleration, {Key: "spot", Operator: corev1.TolerationOpExists}}
				p.Spec.NodeSelector = map[string]string{"nvidia.com/gpu.product": "H100", "zone": "a"}
			}),
			spec: kernelSpec(ptr.To[int32](1), "", ""), rules: gpuTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				assert.Equal(t, []corev1.Toleration{DefaultGPUToleration, {Key: "spot", Operator: corev1.TolerationOpExists}, dedicated}, out.Spec.Tolerations,
					"the default GPU toleration once, the template's, the team's")
				assert.Equal(t, map[string]string{"nvidia.com/gpu.product": "H100", "zone": "a"}, out.Spec.NodeSelector, "the template's choice wins")
			},
		},
		{
			name: "a GPU the template asks for itself brings the GPU placement too",
			pod: kernelPod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
			}),
			spec: kernelSpec(nil, "", ""), rules: gpuTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				assert.Equal(t, []corev1.Toleration{DefaultGPUToleration, dedicated}, out.Spec.Tolerations)
				assert.Equal(t, "A100", out.Spec.NodeSelector["nvidia.com/gpu.product"])
			},
		},
		{
			name: "the template's security context is kept; what it leaves out is filled in",
			pod: kernelPod(func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](4242), FSGroup: ptr.To[int64](100)}
				p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(true)}
			}),
			spec: kernelSpec(nil, "", ""), rules: gpuTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				psc := out.Spec.SecurityContext
				assert.EqualValues(t, 4242, *psc.RunAsUser)
				assert.EqualValues(t, 100, *psc.FSGroup)
				assert.True(t, *psc.RunAsNonRoot)
				assert.True(t, *out.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation)
			},
		},
		{
			name: "runAsNonRoot without a uid gets the non-root uid (an image's USER cannot be checked here)",
			pod: kernelPod(func(p *corev1.Pod) {
				p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptr.To(true)}
			}),
			spec: kernelSpec(nil, "", ""), rules: gpuTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				assert.EqualValues(t, NonRootUID, *out.Spec.SecurityContext.RunAsUser)
			},
		},
		{
			name: "the container's own HOME and liveness probe are kept; its readiness probe is the launcher's",
			pod: kernelPod(withEnv("HOME", "/home/jovyan"), func(p *corev1.Pod) {
				c := &p.Spec.Containers[0]
				c.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
				c.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
			}),
			spec: kernelSpec(nil, "", ""), rules: gpuTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				c := out.Spec.Containers[0]
				assert.Equal(t, "/home/jovyan", env(c)["HOME"].Value)
				assert.NotNil(t, c.LivenessProbe.Exec)
				assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
			},
		},
		{
			name: "the container named kernel is wrapped, a sidecar before it is not; args follow the command",
			pod: kernelPod(func(p *corev1.Pod) {
				p.Spec.Containers[0].Command = []string{"python3", "-m", "ipykernel_launcher"}
				p.Spec.Containers[0].Args = []string{"-f", "{connection_file}"}
				p.Spec.Containers = append([]corev1.Container{{Name: "proxy", Image: "envoy", Command: []string{"envoy"}}}, p.Spec.Containers...)
			}),
			spec: kernelSpec(nil, "", ""), rules: gpuTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				assert.Equal(t, []string{"envoy"}, out.Spec.Containers[0].Command)
				k := out.Spec.Containers[1]
				assert.Equal(t, ipykernel, k.Command[len(k.Command)-5:])
				assert.Empty(t, k.Args)
			},
		},
		{
			name: "a kernel pod whose kernelspec is unknown still gets the launcher, and no GPU", pod: kernelPod(), spec: nil, rules: gpuTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				assert.Equal(t, LauncherBinary, out.Spec.Containers[0].Command[0])
				assert.Equal(t, version.Image(), out.Spec.InitContainers[0].Image, "the default launcher image is this build's")
				noGPU(t, out)
			},
		},
		{
			name: "the connection Secret falls back to the kernel id's",
			pod:  kernelPod(func(p *corev1.Pod) { delete(p.Annotations, ejv1.AnnotationConnectionSecret) }), rules: openTeam,
			check: func(t *testing.T, out *corev1.Pod) {
				assert.Equal(t, "219cfd49-connection", out.Spec.Volumes[1].Secret.SecretName)
			},
		},
		{
			name: "a pod without containers: refused", pod: kernelPod(func(p *corev1.Pod) { p.Spec.Containers = nil }), rules: gpuTeam,
			wantErr: []string{"spec.containers", "needs a container"},
		},
		{
			name: "a kernel container without a command: refused", pod: kernelPod(func(p *corev1.Pod) { p.Spec.Containers[0].Command = nil }), rules: gpuTeam,
			wantErr: []string{"spec.containers[0].command", "set the kernelspec's spec.command"},
		},
		{
			name: "an argv without {connection_file}: refused", pod: kernelPod(func(p *corev1.Pod) { p.Spec.Containers[0].Command = []string{"python3", "-m", "ipykernel_launcher"} }),
			rules: gpuTeam, wantErr: []string{"spec.containers[0].command", "add {connection_file}"},
		},
		{
			name: "a kernel pod without a connection Secret: refused",
			pod: kernelPod(func(p *corev1.Pod) {
				delete(p.Annotations, ejv1.AnnotationConnectionSecret)
				delete(p.Labels, ejv1.LabelKernelID)
			}), rules: gpuTeam,
			wantErr: []string{"metadata.annotations[kubeflow.tkestack.io/connection-secret]"},
		},
		{
			name: "a template volume with the launcher's name: refused",
			pod: kernelPod(func(p *corev1.Pod) {
				p.Spec.Volumes = []corev1.Volume{{Name: "kernel-launcher", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
			}), rules: gpuTeam,
			wantErr: []string{"spec.volumes[0].name", "reserved for the kernel launcher"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.pod.DeepCopy()
			out, err := MutateKernelPod(tc.pod, tc.spec, tc.rules, tc.opts)
			assert.True(t, equality.Semantic.DeepEqual(in, tc.pod), "the input is not modified")
			if len(tc.wantErr) > 0 {
				require.Error(t, err)
				assert.Nil(t, out)
				for _, w := range tc.wantErr {
					assert.Contains(t, err.Error(), w)
				}
				return
			}
			require.NoError(t, err)
			tc.check(t, out)
			assert.Empty(t, ValidateKernelPod(out, tc.rules), "what the mutation makes passes validation")
			again, err := MutateKernelPod(out, tc.spec, tc.rules, tc.opts)
			require.NoError(t, err)
			assert.True(t, equality.Semantic.DeepEqual(out, again), "mutating twice changes nothing")
		})
	}
}

func TestMutateKernelPodLeavesOthersAlone(t *testing.T) {
	mutated, err := MutateKernelPod(kernelPod(), kernelSpec(ptr.To[int32](1), "", ""), gpuTeam, MutateOptions{})
	require.NoError(t, err)
	for name, pod := range map[string]*corev1.Pod{
		"an already mutated pod":         mutated,
		"a pod without the kernel label": kernelPod(func(p *corev1.Pod) { delete(p.Labels, ejv1.LabelComponent) }),
		"a pod of another component":     kernelPod(func(p *corev1.Pod) { p.Labels[ejv1.LabelComponent] = ejv1.ComponentNotebook }),
		"a pod that would be refused":    kernelPod(func(p *corev1.Pod) { p.Labels = nil; p.Spec.Containers[0].Command = nil }),
	} {
		t.Run(name, func(t *testing.T) {
			in := pod.DeepCopy()
			out, err := MutateKernelPod(pod, kernelSpec(ptr.To[int32](2), "", ""), gpuTeam, MutateOptions{})
			require.NoError(t, err)
			assert.True(t, equality.Semantic.DeepEqual(in, out), "unchanged")
			assert.Empty(t, MutationWarnings(pod, gpuTeam))
		})
	}
}

func TestMutationWarnings(t *testing.T) {
	assert.Empty(t, MutationWarnings(kernelPod(), gpuTeam))
	assert.Empty(t, MutationWarnings(kernelPod(withEnv(KernelGPUsEnv, "2")), clientTeam))
	w := MutationWarnings(kernelPod(withEnv(KernelGPUsEnv, "2")), gpuTeam)
	require.Len(t, w, 1)
	assert.Contains(t, w[0], "KERNEL_GPUS=2 is ignored: team vision does not let clients choose")
}
