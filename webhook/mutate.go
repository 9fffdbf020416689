package webhook

import (
	"fmt"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

// Paths and names the mutation puts into kernel pods (docs/contracts.md).
const (
	LauncherVolume     = "kernel-launcher"
	LauncherMountPath  = "/opt/elastic-jupyter"
	LauncherBinary     = LauncherMountPath + "/bin/kernel-launcher"
	LauncherRuntimeDir = LauncherMountPath + "/run"
	LauncherHome       = LauncherMountPath + "/home"
	InitContainerName  = "kernel-launcher-install"
	ConnectionVolume   = "kernel-connection"
	ConnectionDir      = "/var/run/elastic-jupyter/connection"
	LauncherPortName   = "launcher"
	// KernelGPUsEnv is the client's GPU request, honoured when the team allows it.
	KernelGPUsEnv = "KERNEL_GPUS"
	// NonRootUID is the user kernels run as when their template says nothing.
	NonRootUID = 1000
)

// MutateOptions are the webhook's settings.
type MutateOptions struct {
	// LauncherImage is the image whose /usr/local/bin/kernel-launcher the init container copies
	// (default: this project's image).
	LauncherImage string
}

// IsKernelPod reports whether the mutation applies to pod.
func IsKernelPod(pod *corev1.Pod) bool {
	return pod.Labels[ejv1.LabelComponent] == ejv1.ComponentKernel
}

// MutateKernelPod returns a kernel pod that runs under the kernel launcher with the GPUs,
// tolerations and node selection that its kernelspec (nil when unknown) and its team's rules
// give it. Pods that are not kernel pods, or that were mutated already, come back unchanged.
// An error means the pod must be refused; its message names the field and the fix.
func MutateKernelPod(in *corev1.Pod, spec *ejv1.JupyterKernelSpec, rules Rules, opts MutateOptions) (*corev1.Pod, error) {
	if !IsKernelPod(in) || in.Annotations[ejv1.AnnotationLauncherInjected] == "true" {
		return in, nil
	}
	pod := in.DeepCopy()
	idx := kernelContainer(&pod.Spec)
	if idx < 0 {
		return nil, fmt.Errorf("spec.containers: a kernel pod needs a container to run the kernel (named %q, or the first)", ejv1.KernelContainerName)
	}
	c := &pod.Spec.Containers[idx]
	argv := append(append([]string{}, c.Command...), c.Args...)
	if len(argv) == 0 {
		return nil, fmt.Errorf("spec.containers[%d].command: the kernel container has no command to wrap with the kernel launcher: set the kernelspec's command", idx)
	}
	secret := pod.Annotations[ejv1.AnnotationConnectionSecret]
	if secret == "" && pod.Labels[ejv1.LabelKernelID] != "" {
		secret = ejv1.ConnectionSecretName(pod.Labels[ejv1.LabelKernelID])
	}
	if secret == "" {
		return nil, fmt.Errorf("metadata.annotations[%s]: a kernel pod must name its connection Secret (the controller sets it)", ejv1.AnnotationConnectionSecret)
	}
	gpus, err := gpuCount(c, spec, rules, idx)
	if err != nil {
		return nil, err
	}
	resName := rules.ResourceName
	if spec != nil && spec.Spec.Resources != nil && spec.Spec.Resources.GPUResource != "" {
		resName = spec.Spec.Resources.GPUResource
	}

	image := opts.LauncherImage
	if image == "" {
		image = version.Image()
	}
	mode := launcher.InterruptSignal
	if spec != nil && spec.Spec.InterruptMode != "" {
		mode = string(spec.Spec.InterruptMode)
	}

	// The launcher binary, copied into an emptyDir by an init container.
	pod.Spec.Volumes = append(pod.Spec.Volumes,
		corev1.Volume{Name: LauncherVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		corev1.Volume{Name: ConnectionVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: secret, DefaultMode: ptr.To[int32](0o400),
		}}},
	)
	launcherMount := corev1.VolumeMount{Name: LauncherVolume, MountPath: LauncherMountPath}
	pod.Spec.InitContainers = append(pod.Spec.InitContainers, corev1.Container{
		Name:            InitContainerName,
		Image:           image,
		Command:         []string{version.LauncherPath, "install", LauncherMountPath + "/bin"},
		VolumeMounts:    []corev1.VolumeMount{launcherMount},
		SecurityContext: restrictedContainer(nil),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
	})

	// The kernel container runs under the launcher.
	c.Command = append([]string{LauncherBinary, "run",
		"--connection-file", ConnectionDir + "/" + ejv1.ConnectionFileKey,
		"--runtime-dir", LauncherRuntimeDir,
		"--ip", "$(POD_IP)",
		"--control-port", strconv.Itoa(launcher.DefaultControlPort),
		"--interrupt-mode", mode,
		"--"}, argv...)
	c.Args = nil
	c.VolumeMounts = append(c.VolumeMounts, launcherMount,
		corev1.VolumeMount{Name: ConnectionVolume, MountPath: ConnectionDir, ReadOnly: true})
	c.Env = setEnvIfMissing(c.Env,
		corev1.EnvVar{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		corev1.EnvVar{Name: "KERNEL_ID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['" + ejv1.LabelKernelID + "']"}}},
		corev1.EnvVar{Name: "HOME", Value: LauncherHome},
	)
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == LauncherPortName }) {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: LauncherPortName, ContainerPort: launcher.DefaultControlPort, Protocol: corev1.ProtocolTCP})
	}
	if c.ReadinessProbe == nil {
		c.ReadinessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(launcher.DefaultControlPort)}},
			PeriodSeconds: 1, FailureThreshold: 3, TimeoutSeconds: 1,
		}
	}
	if c.LivenessProbe == nil {
		c.LivenessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(launcher.DefaultControlPort)}},
			PeriodSeconds: 10, FailureThreshold: 3, TimeoutSeconds: 2, InitialDelaySeconds: 5,
		}
	}
	c.SecurityContext = restrictedContainer(c.SecurityContext)

	// GPUs, and the tolerations and node selection that let the pod onto GPU nodes.
	if gpus > 0 {
		q := *resource.NewQuantity(int64(gpus), resource.DecimalSI)
		if c.Resources.Limits == nil {
			c.Resources.Limits = corev1.ResourceList{}
		}
		if c.Resources.Requests == nil {
			c.Resources.Requests = corev1.ResourceList{}
		}
		c.Resources.Limits[resName] = q
		c.Resources.Requests[resName] = q
		pod.Spec.Tolerations = mergeTolerations(pod.Spec.Tolerations, append([]corev1.Toleration{DefaultGPUToleration}, rules.Tolerations...)...)
		if len(rules.NodeSelector) > 0 {
			if pod.Spec.NodeSelector == nil {
				pod.Spec.NodeSelector = map[string]string{}
			}
			for k, v := range rules.NodeSelector {
				if _, set := pod.Spec.NodeSelector[k]; !set {
					pod.Spec.NodeSelector[k] = v
				}
			}
		}
	}
	if pod.Spec.SecurityContext == nil {
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	psc := pod.Spec.SecurityContext
	if psc.RunAsUser == nil && psc.RunAsNonRoot == nil {
		psc.RunAsNonRoot = ptr.To(true)
		psc.RunAsUser = ptr.To[int64](NonRootUID)
		psc.RunAsGroup = ptr.To[int64](NonRootUID)
		if psc.FSGroup == nil {
			psc.FSGroup = ptr.To[int64](NonRootUID)
		}
	}
	if psc.SeccompProfile == nil {
		psc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[ejv1.AnnotationLauncherInjected] = "true"
	return pod, nil
}

// kernelContainer is the index of the container named "kernel", else 0, else -1.
func kernelContainer(spec *corev1.PodSpec) int {
	for i := range spec.Containers {
		if spec.Containers[i].Name == ejv1.KernelContainerName {
			return i
		}
	}
	if len(spec.Containers) > 0 {
		return 0
	}
	return -1
}

// gpuCount is the number of GPUs the kernel gets: the client's KERNEL_GPUS where the team
// allows it, else the kernelspec's, else the team's default; more than the team's maximum is
// an error.
func gpuCount(c *corev1.Container, spec *ejv1.JupyterKernelSpec, rules Rules, idx int) (int32, error) {
	n := rules.DefaultPerKernel
	source := fmt.Sprintf("team %s's default", rules.Team)
	if spec != nil && spec.Spec.Resources != nil && spec.Spec.Resources.GPUs != nil {
		n = *spec.Spec.Resources.GPUs
		source = fmt.Sprintf("kernelspec %s", spec.Name)
	}
	for i, e := range c.Env {
		if e.Name != KernelGPUsEnv || e.ValueFrom != nil {
			continue
		}
		if !rules.ClientMayRequest {
			break // ignored: the team does not let clients choose
		}
		v, err := strconv.Atoi(e.Value)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("spec.containers[%d].env[%d]: %s=%q is not a number of GPUs (0 or more)", idx, i, KernelGPUsEnv, e.Value)
		}
		n, source = int32(v), KernelGPUsEnv
	}
	if rules.MaxPerKernel >= 0 && n > rules.MaxPerKernel {
		return 0, fmt.Errorf("spec.containers[%d].resources.limits[%s]: %s asks for %d GPU(s); team %s allows at most %d per kernel: ask for fewer, or change the team's gpu.maxPerKernel",
			idx, rules.ResourceName, source, n, rules.Team, rules.MaxPerKernel)
	}
	return n, nil
}

// setEnvIfMissing appends the variables the container does not set yet.
func setEnvIfMissing(env []corev1.EnvVar, add ...corev1.EnvVar) []corev1.EnvVar {
	for _, a := range add {
		if !slices.ContainsFunc(env, func(e corev1.EnvVar) bool { return e.Name == a.Name }) {
			env = append(env, a)
		}
	}
	return env
}

// mergeTolerations appends the tolerations not present yet.
func mergeTolerations(have []corev1.Toleration, add ...corev1.Toleration) []corev1.Toleration {
	for _, a := range add {
		if !slices.ContainsFunc(have, func(t corev1.Toleration) bool { return t.MatchToleration(&a) }) {
			have = append(have, a)
		}
	}
	return have
}

// restrictedContainer forbids privilege escalation where the template said nothing.
func restrictedContainer(sc *corev1.SecurityContext) *corev1.SecurityContext {
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if sc.AllowPrivilegeEscalation == nil {
		sc.AllowPrivilegeEscalation = ptr.To(false)
	}
	if sc.Capabilities == nil {
		sc.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
	}
	return sc
}
