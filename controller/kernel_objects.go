package controller

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// A kernel's five ZeroMQ ports are drawn at random, five distinct ones, from
// [kernelPortMin, kernelPortMax). Every kernel pod has an IP of its own, so ports need only be
// distinct within one kernel; drawing them at random (rather than fixing them) keeps two
// kernels apart even where pods share an address (host networking, devnode's shared host).
// The range lies below Linux's ephemeral range (32768-60999, where outgoing connections take
// their local ports) and the NodePort range (30000-32767), and above the well-known and common
// service ports (the launcher's 8778, Jupyter's 8888, webhooks' 9443).
const (
	kernelPortMin = 20000
	kernelPortMax = 30000
)

// connectionFile is the connection Secret's JSON (no ip: the launcher fills it in).
type connectionFile struct {
	Transport       string `json:"transport"`
	SignatureScheme string `json:"signature_scheme"`
	Key             string `json:"key"`
	ShellPort       int    `json:"shell_port"`
	IOPubPort       int    `json:"iopub_port"`
	StdinPort       int    `json:"stdin_port"`
	ControlPort     int    `json:"control_port"`
	HBPort          int    `json:"hb_port"`
	IP              string `json:"ip"`
	KernelName      string `json:"kernel_name"`
}

// newConnection draws a random 32-byte key and five distinct ports.
func newConnection(kernelName string) (connectionFile, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return connectionFile{}, fmt.Errorf("drawing the kernel key: %w", err)
	}
	ports := map[int]bool{}
	var list []int
	for len(list) < 5 {
		n, err := rand.Int(rand.Reader, big.NewInt(kernelPortMax-kernelPortMin))
		if err != nil {
			return connectionFile{}, err
		}
		p := kernelPortMin + int(n.Int64())
		if !ports[p] {
			ports[p] = true
			list = append(list, p)
		}
	}
	return connectionFile{
		Transport: "tcp", SignatureScheme: "hmac-sha256", Key: hex.EncodeToString(key),
		ShellPort: list[0], IOPubPort: list[1], StdinPort: list[2], ControlPort: list[3], HBPort: list[4],
		KernelName: kernelName,
	}, nil
}

// desiredConnectionSecret is the kernel's connection Secret.
func desiredConnectionSecret(k *ejv1.JupyterKernel, conn connectionFile) (*corev1.Secret, error) {
	data, err := json.Marshal(conn)
	if err != nil {
		return nil, err
	}
	labels := commonLabels(ejv1.ComponentKernelConnection, k.Name)
	labels[ejv1.LabelKernelID] = k.Name
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: ejv1.ConnectionSecretName(k.Name), Namespace: k.Namespace, Labels: labels},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{ejv1.ConnectionFileKey: data},
	}, nil
}

var dnsInvalid = regexp.MustCompile(`[^a-z0-9-]+`)

// kernelPodName is "<user>-<kernel id>", DNS-sanitised, as the original project named kernel
// pods; just the id without a user.
func kernelPodName(user, id string) string {
	u := strings.Trim(dnsInvalid.ReplaceAllString(strings.ToLower(user), "-"), "-")
	if len(u) > 63 {
		u = strings.Trim(u[:63], "-")
	}
	if u == "" {
		return id
	}
	return u + "-" + id
}

// kernelSources are what a kernel pod is built from.
type kernelSources struct {
	kernel   *ejv1.JupyterKernel
	spec     *ejv1.JupyterKernelSpec     // nil when the kernel names none
	template *ejv1.JupyterKernelTemplate // nil when the kernelspec names none
}

// desiredKernelPod builds the kernel's pod: the template (the kernelspec's
// JupyterKernelTemplate, then the kernel's own template over it), the kernelspec's image,
// argv, env and resources on the kernel container, and the labels and annotations through
// which the webhook and the gateway find it. The webhook adds the launcher and GPUs.
func desiredKernelPod(src kernelSources) (*corev1.Pod, error) {
	k := src.kernel
	var base *corev1.PodTemplateSpec
	if src.template != nil && src.template.Spec.Template != nil {
		base = src.template.Spec.Template.DeepCopy()
	}
	tmpl, err := mergePodTemplate(base, k.Spec.Template)
	if err != nil {
		return nil, err
	}
	if tmpl == nil {
		tmpl = &corev1.PodTemplateSpec{}
	}
	if len(tmpl.Spec.Containers) == 0 {
		if src.spec == nil {
			return nil, fmt.Errorf("spec.template has no container and spec.kernelSpec is empty: name a JupyterKernelSpec or give the template a container")
		}
		tmpl.Spec.Containers = []corev1.Container{{Name: ejv1.KernelContainerName}}
	}
	i := mainContainer(&tmpl.Spec, ejv1.KernelContainerName)
	c := &tmpl.Spec.Containers[i]
	if s := src.spec; s != nil {
		if s.Spec.Image != "" {
			c.Image = s.Spec.Image
		}
		c.Command = append([]string(nil), s.Spec.Command...)
		c.Args = nil
		c.Env = mergeEnv(c.Env, s.Spec.Env...)
		if r := s.Spec.Resources; r != nil {
			setQuantity(&c.Resources, corev1.ResourceCPU, r.CPU)
			setQuantity(&c.Resources, corev1.ResourceMemory, r.Memory)
		}
		if st := s.Spec.State; st != nil {
			if err := addStateVolume(&tmpl.Spec, c, st); err != nil {
				return nil, err
			}
		}
	}
	c.Env = mergeEnv(c.Env, k.Spec.Env...)
	if c.Image == "" {
		return nil, fmt.Errorf("the kernel container has no image: set spec.image on the JupyterKernelSpec or an image in the template")
	}
	if len(c.Command) == 0 {
		return nil, fmt.Errorf("the kernel container has no command: set spec.command on the JupyterKernelSpec")
	}

	labels := mergeMaps(tmpl.Labels, map[string]string{
		ejv1.LabelComponent: ejv1.ComponentKernel,
		ejv1.LabelKernelID:  k.Name,
		ejv1.LabelManagedBy: ejv1.ManagedBy,
	})
	annotations := mergeMaps(tmpl.Annotations, map[string]string{
		ejv1.AnnotationConnectionSecret: ejv1.ConnectionSecretName(k.Name),
	})
	if src.spec != nil {
		labels[ejv1.LabelKernelSpec] = src.spec.Name
		annotations[ejv1.AnnotationKernelSpec] = src.spec.Namespace + "/" + src.spec.Name
	}
	if gw := k.Labels[ejv1.LabelGateway]; gw != "" {
		labels[ejv1.LabelGateway] = gw
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        kernelPodName(k.Spec.User, k.Name),
			Namespace:   k.Namespace,
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: tmpl.Spec,
	}
	// A kernel that dies is reported, never restarted with stale state behind the client's back.
	pod.Spec.RestartPolicy = corev1.RestartPolicyNever
	// A kernel runs the user's code: it gets no API credentials and no service environment
	// variables unless its template asks for them.
	if pod.Spec.AutomountServiceAccountToken == nil {
		pod.Spec.AutomountServiceAccountToken = ptr.To(false)
	}
	if pod.Spec.EnableServiceLinks == nil {
		pod.Spec.EnableServiceLinks = ptr.To(false)
	}
	return pod, nil
}

// addStateVolume mounts the kernelspec's state claim into the kernel container, where the
// kernel saves its variables before a suspension and loads them when it resumes.
func addStateVolume(spec *corev1.PodSpec, c *corev1.Container, st *ejv1.KernelState) error {
	for _, v := range spec.Volumes {
		if v.Name == ejv1.StateVolumeName {
			return fmt.Errorf("the template has a volume named %q, which the kernelspec's spec.state needs: rename the template's volume", ejv1.StateVolumeName)
		}
	}
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: ejv1.StateVolumeName, VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: st.Volume},
	}})
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: ejv1.StateVolumeName, MountPath: ejv1.StateMountPath})
	return nil
}

// defaultStateMaxBytes is a kernelspec's spec.state.maxBytes when it sets none (256 MiB).
const defaultStateMaxBytes int64 = 256 << 20

// stateStatus is what a kernel's status says of the state its new pod keeps.
func stateStatus(ks *ejv1.JupyterKernelSpec, prev *ejv1.KernelStateStatus) *ejv1.KernelStateStatus {
	out := &ejv1.KernelStateStatus{}
	if prev != nil {
		out = prev.DeepCopy()
	}
	out.Volume, out.MaxBytes = "", 0
	if ks != nil && ks.Spec.State != nil {
		out.Volume, out.MaxBytes = ks.Spec.State.Volume, defaultStateMaxBytes
		if q := ks.Spec.State.MaxBytes; q != nil {
			out.MaxBytes = q.Value()
		}
	}
	if *out == (ejv1.KernelStateStatus{}) {
		return nil
	}
	return out
}

// setQuantity sets a request and the equal limit.
func setQuantity(r *corev1.ResourceRequirements, name corev1.ResourceName, q *resource.Quantity) {
	if q == nil {
		return
	}
	if r.Requests == nil {
		r.Requests = corev1.ResourceList{}
	}
	if r.Limits == nil {
		r.Limits = corev1.ResourceList{}
	}
	r.Requests[name] = q.DeepCopy()
	r.Limits[name] = q.DeepCopy()
}
