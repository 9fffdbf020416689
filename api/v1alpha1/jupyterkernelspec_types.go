package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// InterruptMode says how a kernel is interrupted.
// +kubebuilder:validation:Enum=signal;message
type InterruptMode string

const (
	// InterruptModeSignal interrupts the kernel with SIGINT, delivered by the kernel launcher
	// in its pod (the default, as in Jupyter).
	InterruptModeSignal InterruptMode = "signal"
	// InterruptModeMessage interrupts the kernel with an interrupt_request on its control
	// channel.
	InterruptModeMessage InterruptMode = "message"
)

// JupyterKernelSpecSpec is the desired state of a JupyterKernelSpec: how to run one kind of
// kernel, as a Jupyter kernel.json does, plus the pod it runs in.
type JupyterKernelSpecSpec struct {
	// language is the kernel's language, as in kernel.json (for example "python").
	// +optional
	Language string `json:"language,omitempty"`

	// displayName is the name users see in the notebook's kernel picker.
	// +optional
	DisplayName string `json:"displayName,omitempty"`

	// image is the kernel container's image.
	// +optional
	Image string `json:"image,omitempty"`

	// env is extra environment for the kernel container.
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// command is the kernel's argv, as kernel.json's "argv": "{connection_file}" is replaced
	// by the path of the connection file the kernel launcher writes (for example
	// ["python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"]).
	// +kubebuilder:validation:MinItems=1
	// +required
	Command []string `json:"command"`

	// className is kept for compatibility with the original project (Enterprise Gateway's
	// process proxy class); elastic-jupyter ignores it.
	// +optional
	ClassName string `json:"className,omitempty"`

	// template references the JupyterKernelTemplate whose pod template kernels of this spec
	// start from. Only name and namespace are read; namespace defaults to the kernelspec's.
	// +optional
	Template *corev1.ObjectReference `json:"template,omitempty"`

	// resources are what each kernel of this spec asks for: GPUs, CPU and memory.
	// +optional
	Resources *KernelResources `json:"resources,omitempty"`

	// interruptMode is "signal" (SIGINT through the kernel launcher; the default) or
	// "message" (interrupt_request on the control channel), as kernel.json's interrupt_mode.
	// +kubebuilder:default=signal
	// +optional
	InterruptMode InterruptMode `json:"interruptMode,omitempty"`

	// authorizedUsers, when not empty, are the only users who may start kernels of this
	// kernelspec (Enterprise Gateway's authorized_users); others are refused with 403.
	// +optional
	AuthorizedUsers []string `json:"authorizedUsers,omitempty"`

	// unauthorizedUsers may not start kernels of this kernelspec (Enterprise Gateway's
	// unauthorized_users); they are refused with 403, whatever authorizedUsers says.
	// +optional
	UnauthorizedUsers []string `json:"unauthorizedUsers,omitempty"`

	// state keeps the user's variables across a suspension: before the gateway frees a culled
	// kernel's pod (cullPolicy Suspend), it saves the kernel's namespace to this volume, and the
	// resumed kernel loads it before it runs the next cell. Without it a resumed kernel starts
	// a fresh interpreter.
	// +optional
	State *KernelState `json:"state,omitempty"`

	// logo is the kernel's icon, which JupyterLab's launcher shows on its tile (served at
	// /kernelspecs/<name>/logo-svg.svg and logo-64x64.png, as a kernel directory's logo files).
	// +optional
	Logo *KernelLogo `json:"logo,omitempty"`

	// metadata is kernel.json's free-form "metadata" object, served to clients unchanged
	// (for example {"debugger": true}).
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	// +kubebuilder:validation:Schemaless
	// +optional
	Metadata *runtime.RawExtension `json:"metadata,omitempty"`
}

// KernelResources are the compute resources of one kernel.
type KernelResources struct {
	// gpus is the number of GPUs (or GPU slices) each kernel gets, as a limit on gpuResource.
	// The team policy may supply a default and caps it.
	// +kubebuilder:validation:Minimum=0
	// +optional
	GPUs *int32 `json:"gpus,omitempty"`

	// gpuResource is the extended resource name of the GPUs, such as "nvidia.com/gpu" or a
	// MIG profile like "nvidia.com/mig-1g.10gb". Empty means the team policy's.
	// +optional
	GPUResource corev1.ResourceName `json:"gpuResource,omitempty"`

	// cpu is the kernel container's CPU request (and limit).
	// +optional
	CPU *resource.Quantity `json:"cpu,omitempty"`

	// memory is the kernel container's memory request (and limit).
	// +optional
	Memory *resource.Quantity `json:"memory,omitempty"`
}

// KernelLogo is a kernel's icon, in one or both of the forms Jupyter serves.
type KernelLogo struct {
	// svg is an SVG image, as text (JupyterLab prefers it).
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	SVG string `json:"svg,omitempty"`

	// png64 is a 64x64 PNG image (base64 in YAML and JSON).
	// +kubebuilder:validation:MaxLength=65536
	// +optional
	PNG64 []byte `json:"png64,omitempty"`
}

// KernelState says where kernels keep their variables across a suspension.
type KernelState struct {
	// volume is the name of a PersistentVolumeClaim in the kernel's namespace that holds one
	// snapshot file per suspended kernel (mounted in kernel pods at
	// /var/lib/elastic-jupyter/state). Kernels of a team on several nodes need a
	// ReadWriteMany claim.
	// +kubebuilder:validation:MinLength=1
	// +required
	Volume string `json:"volume"`

	// maxBytes is the largest snapshot; variables that would make it larger are not kept
	// (the notebook is told which). Defaults to 256Mi.
	// +optional
	MaxBytes *resource.Quantity `json:"maxBytes,omitempty"`
}

// JupyterKernelSpecStatus is the observed state of a JupyterKernelSpec.
type JupyterKernelSpecStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (False with reason TemplateNotFound while the template is missing).
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// JupyterKernelSpec describes one kind of kernel a gateway offers: argv, image, resources and
// pod template.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=jks,categories=jupyter
// +kubebuilder:printcolumn:name="Display-Name",type=string,JSONPath=`.spec.displayName`
// +kubebuilder:printcolumn:name="Language",type=string,JSONPath=`.spec.language`
// +kubebuilder:printcolumn:name="GPUs",type=integer,JSONPath=`.spec.resources.gpus`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type JupyterKernelSpec struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +required
	Spec JupyterKernelSpecSpec `json:"spec"`
	// status is the observed state.
	// +optional
	Status JupyterKernelSpecStatus `json:"status,omitempty"`
}

// JupyterKernelSpecList is a list of JupyterKernelSpecs.
//
// +kubebuilder:object:root=true
type JupyterKernelSpecList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the JupyterKernelSpecs.
	Items []JupyterKernelSpec `json:"items"`
}

func init() {
	SchemeBuilder.Register(&JupyterKernelSpec{}, &JupyterKernelSpecList{})
}
