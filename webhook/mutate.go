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

// Names and paths the mutation puts into kernel pods (docs/contracts.md, "Webhook mutation").
const (
	// LauncherVolume is the emptyDir that receives the kernel-launcher binary.
	LauncherVolume = "kernel-launcher"
	// LauncherMountPath is where LauncherVolume is mounted, in the init container and the
	// kernel container.
	LauncherMountPath = "/opt/elastic-jupyter"
	// LauncherBinDir is where the init container installs kernel-launcher.
	LauncherBinDir = LauncherMountPath + "/bin"
	// LauncherBinary is the installed kernel-launcher the kernel container runs.
	LauncherBinary = LauncherBinDir + "/kernel-launcher"
	// LauncherRuntimeDir is the launcher's --runtime-dir (the private connection file copy).
	LauncherRuntimeDir = LauncherMountPath + "/run"
	// LauncherHome is the kernel's HOME unless its container sets one.
	LauncherHome = LauncherMountPath + "/home"
	// InitContainerName is the init container that installs the launcher.
	InitContainerName = "kernel-launcher-install"
	// ConnectionVolume is the Secret volume of the kernel's connection file.
	ConnectionVolume = "kernel-connection"
	// ConnectionDir is where ConnectionVolume is mounted (read-only) in the kernel container.
	ConnectionDir = "/var/run/elastic-jupyter/connection"
	// LauncherPortName names the launcher's control port on the kernel container.
	LauncherPortName = "launcher"
	// KernelGPUsEnv is the client's GPU request, honoured where the team allows it.
	KernelGPUsEnv = "KERNEL_GPUS"
	// NonRootUID is the user (and group) kernels run as when their template says nothing.
	NonRootUID = 1000
)

// MutateOptions are the mutation's settings.
type MutateOptions struct {
	// LauncherImage is the image whose kernel-launcher the init container copies (default
	// version.Image()).
	LauncherImage string
}

// IsKernelPod reports whether pod is a kernel pod: the mutation and the kernel pod validation
// apply to these and to no other pod.
func IsKernelPod(pod *corev1.Pod) bool {
	return pod.Labels[ejv1.LabelComponent] == ejv1.ComponentKernel
}

// IsMutated reports whether the mutation already ran on pod.
func IsMutated(pod *corev1.Pod) bool {
	return pod.Annotations[ejv1.AnnotationLauncherInjected] == "true"
}

// MutateKernelPod returns the kernel pod in, changed to run under the kernel launcher with the
// GPUs, tolerations, node selection and security context that its kernelspec (nil when it is
// unknown) and its team's rules give it (docs/contracts.md, "Webhook mutation"). A pod that is
// not a kernel pod, or was mutated already, comes back as it is. in is never modified. An error
// means the pod must be refused; its message names the field and the fix.
func MutateKernelPod(in *corev1.Pod, spec *ejv1.JupyterKernelSpec, rules Rules, opts MutateOptions) (*corev1.Pod, error) {
	if !IsKernelPod(in) || IsMutated(in) {
		return in, nil
	}
	pod := in.DeepCopy()
	idx := kernelContainer(&pod.Spec)
	if idx < 0 {
		return nil, fmt.Errorf("spec.containers: a kernel pod needs a container to run the kernel in (named %q, or the first)", ejv1.KernelContainerName)
	}
	c := &pod.Spec.Containers[idx]
	if len(c.Command) == 0 {
		return nil, fmt.Errorf("spec.containers[%d].command: the kernel container has no command for the kernel launcher to run: set the kernelspec's spec.command", idx)
	}
	argv := append(slices.Clone(c.Command), c.Args...)
	if !hasPlaceholder(argv) {
		return nil, fmt.Errorf("spec.containers[%d].command: the kernel's argv %q does not pass the connection file: add %s where the kernel takes it (for ipykernel: -f %s)",
			idx, argv, ejv1.ConnectionFilePlaceholder, ejv1.ConnectionFilePlaceholder)
	}
	secret := pod.Annotations[ejv1.AnnotationConnectionSecret]
	if secret == "" && pod.Labels[ejv1.LabelKernelID] != "" {
		secret = ejv1.ConnectionSecretName(pod.Labels[ejv1.LabelKernelID])
	}
	if secret == "" {
		return nil, fmt.Errorf("metadata.annotations[%s]: a kernel pod must name its connection Secret (the controller sets it)", ejv1.AnnotationConnectionSecret)
	}
	if err := checkReserved(&pod.Spec, idx); err != nil {
		return nil, err
	}
	gpus, resName, err := gpuRequest(c, idx, spec, rules)
	if err != nil {
		return nil, err
	}

	injectLauncher(pod, idx, argv, secret, interruptMode(spec), opts)
	if gpus > 0 {
		setGPUs(&c.Resources, resName, gpus)
	}
	if podGetsGPU(&pod.Spec, rules) {
		addGPUPlacement(&pod.Spec, rules)
		addGPUQueueGate(&pod.Spec)
	}
	secureDefaults(&pod.Spec, idx)
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

// checkReserved refuses templates that already use the names and paths the launcher needs.
func checkReserved(spec *corev1.PodSpec, idx int) error {
	for i, v := range spec.Volumes {
		if v.Name == LauncherVolume || v.Name == ConnectionVolume {
			return fmt.Errorf("spec.volumes[%d].name: %q is reserved for the kernel launcher: rename the template's volume", i, v.Name)
		}
	}
	for i, c := range spec.InitContainers {
		if c.Name == InitContainerName {
			return fmt.Errorf("spec.initContainers[%d].name: %q is reserved for the kernel launcher: rename the template's init container", i, c.Name)
		}
	}
	for i, m := range spec.Containers[idx].VolumeMounts {
		if m.MountPath == LauncherMountPath || m.MountPath == ConnectionDir {
			return fmt.Errorf("spec.containers[%d].volumeMounts[%d].mountPath: %s is reserved for the kernel launcher: mount the volume elsewhere", idx, i, m.MountPath)
		}
	}
	return nil
}

// interruptMode is the kernelspec's interrupt mode, signal when unknown.
func interruptMode(spec *ejv1.JupyterKernelSpec) string {
	if spec != nil && spec.Spec.InterruptMode != "" {
		return string(spec.Spec.InterruptMode)
	}
	return launcher.InterruptSignal
}

// injectLauncher adds the launcher's init container and volumes, wraps the kernel container's
// argv with `kernel-launcher run`, and gives it the launcher's env, port and probes.
func injectLauncher(pod *corev1.Pod, idx int, argv []string, secret, mode string, opts MutateOptions) {
	image := opts.LauncherImage
	if image == "" {
		image = version.Image()
	}
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
		Command:         []string{version.LauncherPath, "install", LauncherBinDir},
		VolumeMounts:    []corev1.VolumeMount{launcherMount},
		SecurityContext: restrictedContainer(nil),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")},
		},
	})

	c := &pod.Spec.Containers[idx]
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
	// POD_IP and KERNEL_ID come first so that variables defined after them may refer to them.
	c.Env = setEnvIfMissing(c.Env,
		corev1.EnvVar{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		corev1.EnvVar{Name: "KERNEL_ID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['" + ejv1.LabelKernelID + "']"}}},
		corev1.EnvVar{Name: "HOME", Value: LauncherHome},
	)
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == launcher.DefaultControlPort }) {
		c.Ports = append(c.Ports, corev1.ContainerPort{Name: LauncherPortName, ContainerPort: launcher.DefaultControlPort, Protocol: corev1.ProtocolTCP})
	}
	// A kernel that dies says why in its last log line (a Python exception, or the launcher's
	// own message): the kernel's status shows it to the notebook's user.
	if c.TerminationMessagePolicy == "" || c.TerminationMessagePolicy == corev1.TerminationMessageReadFile {
		c.TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	}
	// Ready means the kernel accepts connections: the controller and the gateway rely on it,
	// so the launcher's probe replaces any the template had.
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromInt32(launcher.DefaultControlPort)}},
		PeriodSeconds: 1, FailureThreshold: 3, TimeoutSeconds: 1,
	}
	if c.LivenessProbe == nil {
		c.LivenessProbe = &corev1.Probe{
			ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromInt32(launcher.DefaultControlPort)}},
			PeriodSeconds: 10, FailureThreshold: 3, TimeoutSeconds: 2,
		}
	}
}

// setEnvIfMissing puts the variables the container does not set yet before its own.
func setEnvIfMissing(env []corev1.EnvVar, add ...corev1.EnvVar) []corev1.EnvVar {
	var missing []corev1.EnvVar
	for _, a := range add {
		if !slices.ContainsFunc(env, func(e corev1.EnvVar) bool { return e.Name == a.Name }) {
			missing = append(missing, a)
		}
	}
	return append(missing, env...)
}

// secureDefaults makes the pod run as non-root (uid and gid NonRootUID where the template set
// none) with the runtime's seccomp profile, and forbids privilege escalation in every
// container that does not say otherwise.
func secureDefaults(spec *corev1.PodSpec, idx int) {
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	psc := spec.SecurityContext
	csc := spec.Containers[idx].SecurityContext
	if csc == nil {
		csc = &corev1.SecurityContext{}
	}
	if psc.RunAsNonRoot == nil && csc.RunAsNonRoot == nil {
		psc.RunAsNonRoot = ptr.To(true)
	}
	if psc.RunAsUser == nil && csc.RunAsUser == nil {
		psc.RunAsUser = ptr.To[int64](NonRootUID)
	}
	if psc.RunAsGroup == nil && csc.RunAsGroup == nil {
		psc.RunAsGroup = ptr.To[int64](NonRootUID)
	}
	if psc.FSGroup == nil {
		psc.FSGroup = ptr.To[int64](NonRootUID)
	}
	if psc.SeccompProfile == nil {
		psc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	for i := range spec.Containers {
		spec.Containers[i].SecurityContext = restrictedContainer(spec.Containers[i].SecurityContext)
	}
}

// restrictedContainer forbids privilege escalation and drops all capabilities where the
// template said nothing. A privileged container is left for validation to refuse with its own
// message (the API server would refuse allowPrivilegeEscalation false with privileged true).
func restrictedContainer(sc *corev1.SecurityContext) *corev1.SecurityContext {
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if sc.Privileged != nil && *sc.Privileged {
		return sc
	}
	if sc.AllowPrivilegeEscalation == nil {
		sc.AllowPrivilegeEscalation = ptr.To(false)
	}
	if sc.Capabilities == nil {
		sc.Capabilities = &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}
	}
	return sc
}
