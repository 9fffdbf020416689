package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// JupyterKernelCRDSpec is the desired state of a JupyterKernel. (The name keeps the original
// project's, which avoids a clash with the JupyterKernelSpec kind.)
type JupyterKernelCRDSpec struct {
	// template is the kernel pod's template. When kernelSpec is set, the pod is built from
	// the kernelspec (and its JupyterKernelTemplate) and this template is merged over it;
	// without kernelSpec it is used as is.
	// +optional
	Template *corev1.PodTemplateSpec `json:"template,omitempty"`

	// kernelSpec references the JupyterKernelSpec this kernel runs. Namespace defaults to
	// the kernel's own.
	// +optional
	KernelSpec *ObjectRef `json:"kernelSpec,omitempty"`

	// gateway references the JupyterGateway that started and manages this kernel.
	// +optional
	Gateway *ObjectRef `json:"gateway,omitempty"`

	// user is the name of the user who started the kernel (the client's KERNEL_USERNAME); it
	// prefixes the pod's name.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	User string `json:"user,omitempty"`

	// env is extra environment for the kernel container: the KERNEL_* variables (and any
	// allowed others) the client passed when it started the kernel.
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`

	// suspend, when true, deletes the kernel's pod (freeing its GPU) but keeps the kernel and
	// its connection Secret; setting it back to false starts a fresh pod. The gateway sets it
	// when it culls with cullPolicy Suspend and clears it on the next message.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// startDeadlineSeconds is the longest time in seconds a pod of this kernel may take to
	// become ready, counted from the pod's creation (a start, or a resume), waiting for a GPU
	// and pulling its image included. Past it the kernel fails with reason
	// StartDeadlineExceeded and its pod is deleted; the message says what the kernel was
	// waiting for. The gateway sets it from its launchTimeout. Unset: no deadline.
	// +kubebuilder:validation:Minimum=1
	// +optional
	StartDeadlineSeconds *int32 `json:"startDeadlineSeconds,omitempty"`
}

// KernelPhase is a coarse summary of a kernel's state.
// +kubebuilder:validation:Enum=Pending;Starting;Running;Suspended;Failed;Succeeded
type KernelPhase string

const (
	// KernelPending means the kernel's pod is not created or not scheduled yet (for example
	// waiting for a GPU).
	KernelPending KernelPhase = "Pending"
	// KernelStarting means the pod is scheduled and its containers are starting.
	KernelStarting KernelPhase = "Starting"
	// KernelRunning means the pod is ready: the kernel listens on its ports.
	KernelRunning KernelPhase = "Running"
	// KernelSuspended means spec.suspend is true and the pod is gone.
	KernelSuspended KernelPhase = "Suspended"
	// KernelFailed means the pod failed (see reason and message); it is not replaced.
	KernelFailed KernelPhase = "Failed"
	// KernelSucceeded means the kernel exited with status 0 (it was shut down).
	KernelSucceeded KernelPhase = "Succeeded"
)

// JupyterKernelStatus is the observed state of a JupyterKernel. The controller writes
// everything but lastActivity, executionState and connections, which the gateway writes.
type JupyterKernelStatus struct {
	// phase is Pending, Starting, Running, Suspended, Failed or Succeeded.
	// +optional
	Phase KernelPhase `json:"phase,omitempty"`

	// reason is a CamelCase word for why the kernel is in its phase (for example
	// Unschedulable, ImagePullBackOff, OOMKilled, Error).
	// +optional
	Reason string `json:"reason,omitempty"`

	// message is a human-readable explanation of the phase, written for the notebook's user:
	// while the kernel starts it says what it waits for (for example "waiting for a GPU: 0 of
	// 2 nvidia.com/gpu free (1 kernel ahead of you)"); the gateway relays it to the notebook.
	// +optional
	Message string `json:"message,omitempty"`

	// queuePosition is the number of kernels that wait for the same GPUs and arrived earlier,
	// while this kernel's pod waits in the GPU queue; 0 otherwise.
	// +optional
	QueuePosition int32 `json:"queuePosition,omitempty"`

	// pod is the name of the kernel's current pod.
	// +optional
	Pod string `json:"pod,omitempty"`

	// podIP is the IP of the kernel's current pod, where its ports listen.
	// +optional
	PodIP string `json:"podIP,omitempty"`

	// startTime is when the current pod started.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`

	// completionTime is when the kernel's pod ended (Failed or Succeeded).
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`

	// gpus is the number of GPUs the kernel's pod holds now (0 while suspended).
	// +optional
	GPUs int32 `json:"gpus"`

	// gpuResource is the resource name of the GPUs the kernel's pod asks for (such as
	// nvidia.com/gpu or a MIG profile); empty for a kernel without GPUs.
	// +optional
	GPUResource string `json:"gpuResource,omitempty"`

	// suspendedGPUs is the number of GPUs the kernel gave back when it was suspended (0 while
	// it is not suspended).
	// +optional
	SuspendedGPUs int32 `json:"suspendedGPUs,omitempty"`

	// suspendedAt is when the kernel was last suspended.
	// +optional
	SuspendedAt *metav1.Time `json:"suspendedAt,omitempty"`

	// lastActivity is when a message last went to or came from the kernel, as the gateway
	// saw it (written by the gateway at most every few seconds).
	// +optional
	LastActivity *metav1.Time `json:"lastActivity,omitempty"`

	// executionState is the kernel's execution state as the gateway saw it: starting, idle,
	// busy or dead.
	// +optional
	ExecutionState string `json:"executionState,omitempty"`

	// connections is the number of clients connected to the kernel through the gateway.
	// +optional
	Connections int32 `json:"connections,omitempty"`

	// state is where the kernel keeps its variables across a suspension, and its snapshot.
	// +optional
	State *KernelStateStatus `json:"state,omitempty"`

	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready (the pod is ready), Suspended.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// KernelStateStatus reports a kernel's saved variables.
type KernelStateStatus struct {
	// volume is the PersistentVolumeClaim the kernel's current pod mounts for its state
	// (written by the controller); empty when it keeps none.
	// +optional
	Volume string `json:"volume,omitempty"`

	// maxBytes is the largest snapshot, in bytes (from the kernelspec).
	// +optional
	MaxBytes int64 `json:"maxBytes,omitempty"`

	// saved is true while a snapshot of the kernel's variables waits on the volume for the
	// kernel to resume (written by the gateway). A kernel deleted while saved has its snapshot
	// removed by the controller before it goes.
	// +optional
	Saved bool `json:"saved,omitempty"`

	// savedAt is when the last snapshot was written.
	// +optional
	SavedAt *metav1.Time `json:"savedAt,omitempty"`

	// bytes is the size of the last snapshot.
	// +optional
	Bytes int64 `json:"bytes,omitempty"`

	// message says what the last save or load kept and lost, as the notebook was told.
	// +optional
	Message string `json:"message,omitempty"`
}

// JupyterKernel is one running (or suspended) Jupyter kernel: a pod with its own connection
// Secret, started by a gateway. Its name is the kernel id.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=jk,categories=jupyter
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="KernelSpec",type=string,JSONPath=`.spec.kernelSpec.name`
// +kubebuilder:printcolumn:name="User",type=string,JSONPath=`.spec.user`
// +kubebuilder:printcolumn:name="GPUs",type=integer,JSONPath=`.status.gpus`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.executionState`
// +kubebuilder:printcolumn:name="Idle-Since",type=date,JSONPath=`.status.lastActivity`
// +kubebuilder:printcolumn:name="Pod",type=string,JSONPath=`.status.pod`,priority=1
// +kubebuilder:printcolumn:name="IP",type=string,JSONPath=`.status.podIP`,priority=1
// +kubebuilder:printcolumn:name="Message",type=string,JSONPath=`.status.message`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type JupyterKernel struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +optional
	Spec JupyterKernelCRDSpec `json:"spec,omitempty"`
	// status is the observed state.
	// +optional
	Status JupyterKernelStatus `json:"status,omitempty"`
}

// JupyterKernelList is a list of JupyterKernels.
//
// +kubebuilder:object:root=true
type JupyterKernelList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the JupyterKernels.
	Items []JupyterKernel `json:"items"`
}

func init() {
	SchemeBuilder.Register(&JupyterKernel{}, &JupyterKernelList{})
}
