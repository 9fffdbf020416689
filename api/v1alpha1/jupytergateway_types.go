package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LogLevel is a gateway's log verbosity.
// +kubebuilder:validation:Enum=DEBUG;INFO;WARNING;ERROR
type LogLevel string

const (
	// LogLevelDebug logs every request and kernel message type.
	LogLevelDebug LogLevel = "DEBUG"
	// LogLevelInfo logs kernel lifecycle events (the default).
	LogLevelInfo LogLevel = "INFO"
	// LogLevelWarning logs only problems.
	LogLevelWarning LogLevel = "WARNING"
	// LogLevelError logs only errors.
	LogLevelError LogLevel = "ERROR"
)

// CullPolicy says what happens to a kernel that has been idle past the cull timeout.
// +kubebuilder:validation:Enum=Delete;Suspend
type CullPolicy string

const (
	// CullPolicyDelete deletes the JupyterKernel: its pod and GPU go, and so does the kernel
	// (the original behaviour; the notebook sees the kernel as culled).
	CullPolicyDelete CullPolicy = "Delete"
	// CullPolicySuspend sets the JupyterKernel's spec.suspend: its pod and GPU go, the kernel
	// id stays, and the next message on it brings a fresh pod back.
	CullPolicySuspend CullPolicy = "Suspend"
)

// JupyterGatewaySpec is the desired state of a JupyterGateway: a Jupyter kernel gateway that
// runs each kernel in its own pod and culls idle ones.
type JupyterGatewaySpec struct {
	// kernels lists the names of the JupyterKernelSpecs (in the gateway's namespace) this
	// gateway offers. Empty offers every JupyterKernelSpec in the gateway's namespace. Read
	// live by the gateway: an edit shows in /api/kernelspecs without a restart.
	// +optional
	Kernels []string `json:"kernels,omitempty"`

	// defaultKernel is the kernelspec clients get when they do not name one. Defaults to
	// the first of kernels (or, with kernels empty, the first kernelspec by name).
	// +optional
	DefaultKernel *string `json:"defaultKernel,omitempty"`

	// cullIdleTimeout is the time in seconds after which an idle kernel is culled. 0 (the
	// default) disables culling. Very short timeouts may cull the kernels of users with poor
	// network connections. Read live by the gateway.
	// +kubebuilder:validation:Minimum=0
	// +optional
	CullIdleTimeout *int32 `json:"cullIdleTimeout,omitempty"`

	// cullInterval is the period in seconds at which the gateway looks for kernels to cull.
	// Read live by the gateway.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=300
	// +optional
	CullInterval *int32 `json:"cullInterval,omitempty"`

	// cullConnected also culls idle kernels that still have a client connected (a browser
	// tab left open, which is how most notebooks are left). Defaults to true with cullPolicy
	// Suspend (the kernel comes back with its variables on the next cell, so the GPU of an
	// open, idle tab goes back to the cluster) and to false with Delete, as in Jupyter.
	// +optional
	CullConnected *bool `json:"cullConnected,omitempty"`

	// cullBusy also culls kernels that are busy (running a cell) once nothing has been
	// heard from them for cullIdleTimeout. Defaults to false, as in Jupyter.
	// +optional
	CullBusy bool `json:"cullBusy,omitempty"`

	// cullPolicy is what culling does: Delete (the default) deletes the kernel; Suspend
	// frees its pod and GPU but keeps the kernel, which comes back on the next message.
	// +kubebuilder:default=Delete
	// +optional
	CullPolicy CullPolicy `json:"cullPolicy,omitempty"`

	// kernelNamespace is the namespace the gateway creates JupyterKernels (and so kernel
	// pods) in. Defaults to the gateway's own namespace.
	// +optional
	KernelNamespace string `json:"kernelNamespace,omitempty"`

	// launchTimeout is the longest time in seconds a kernel may take to become ready
	// (scheduling included) before its start fails. A client's KERNEL_LAUNCH_TIMEOUT may
	// shorten it, never lengthen it.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:default=300
	// +optional
	LaunchTimeout *int32 `json:"launchTimeout,omitempty"`

	// allowedEnv lists environment variable names, beyond KERNEL_*, that clients may pass to
	// kernels when they start them.
	// +optional
	AllowedEnv []string `json:"allowedEnv,omitempty"`

	// auth configures the token clients must present. Without it a token is generated and
	// kept in the Secret "<gateway>-token", which notebooks pointing at this gateway read.
	// +optional
	Auth *GatewayAuth `json:"auth,omitempty"`

	// logLevel is the gateway's log verbosity: DEBUG, INFO (the default), WARNING or ERROR.
	// +optional
	LogLevel *LogLevel `json:"logLevel,omitempty"`

	// resources are the compute resources of the gateway container.
	// More info: https://kubernetes.io/docs/concepts/configuration/manage-compute-resources-container/
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`

	// image is the gateway's container image. Defaults to this project's image, as
	// configured on the controller.
	// +optional
	Image string `json:"image,omitempty"`

	// clusterRole, when set, is bound (with a RoleBinding in the kernel namespace) to the
	// gateway's ServiceAccount instead of the least-privilege Role the controller creates.
	// +optional
	ClusterRole *string `json:"clusterRole,omitempty"`
}

// GatewayAuth configures the gateway's token.
type GatewayAuth struct {
	// mode is "enable" (clients must send the token; the default) or "disable" (any client
	// that reaches the gateway's Service may start kernels).
	// +kubebuilder:default=enable
	// +optional
	Mode ModeJupyterAuth `json:"mode,omitempty"`

	// secretName names a Secret in the gateway's namespace whose key "token" holds the
	// token. When empty, the controller creates "<gateway>-token" with a random one.
	// +optional
	SecretName string `json:"secretName,omitempty"`
}

// JupyterGatewayStatus is the observed state of a JupyterGateway.
type JupyterGatewayStatus struct {
	// ready is true when the gateway's pod is ready to serve.
	// +optional
	Ready bool `json:"ready"`

	// readyReplicas is the number of ready gateway pods.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// url is the gateway's in-cluster URL, for a notebook server's --gateway-url.
	// +optional
	URL string `json:"url,omitempty"`

	// kernelsRunning is the number of this gateway's kernels whose pod is running.
	// +optional
	KernelsRunning int32 `json:"kernelsRunning"`

	// kernelsSuspended is the number of this gateway's kernels that are suspended (no pod,
	// no GPU, back on the next message).
	// +optional
	KernelsSuspended int32 `json:"kernelsSuspended"`

	// gpusHeld is the number of GPUs held by this gateway's kernel pods.
	// +optional
	GPUsHeld int32 `json:"gpusHeld"`

	// gpuSecondsGivenBack is the GPU time the gateway's suspended kernels gave back to the
	// cluster (the GPUs each held when suspended, for as long as it stayed suspended), since the
	// gateway was created; counted by the controller, to within a minute.
	// +optional
	GPUSecondsGivenBack int64 `json:"gpuSecondsGivenBack,omitempty"`

	// gpuHoursGivenBack is gpuSecondsGivenBack in hours, with two decimals, for kubectl.
	// +optional
	GPUHoursGivenBack string `json:"gpuHoursGivenBack,omitempty"`

	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// JupyterGateway is a Jupyter kernel gateway: it starts kernels as JupyterKernels (each in its
// own pod), relays notebook servers' websockets to them, and culls idle ones.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=jgw,categories=jupyter
// +kubebuilder:printcolumn:name="Ready",type=boolean,JSONPath=`.status.ready`
// +kubebuilder:printcolumn:name="Running",type=integer,JSONPath=`.status.kernelsRunning`
// +kubebuilder:printcolumn:name="Suspended",type=integer,JSONPath=`.status.kernelsSuspended`
// +kubebuilder:printcolumn:name="GPUs",type=integer,JSONPath=`.status.gpusHeld`
// +kubebuilder:printcolumn:name="GPU-Hours-Given-Back",type=string,JSONPath=`.status.gpuHoursGivenBack`
// +kubebuilder:printcolumn:name="Idle-Timeout",type=integer,JSONPath=`.spec.cullIdleTimeout`
// +kubebuilder:printcolumn:name="Policy",type=string,JSONPath=`.spec.cullPolicy`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type JupyterGateway struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +optional
	Spec JupyterGatewaySpec `json:"spec,omitempty"`
	// status is the observed state.
	// +optional
	Status JupyterGatewayStatus `json:"status,omitempty"`
}

// JupyterGatewayList is a list of JupyterGateways.
//
// +kubebuilder:object:root=true
type JupyterGatewayList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the JupyterGateways.
	Items []JupyterGateway `json:"items"`
}

func init() {
	SchemeBuilder.Register(&JupyterGateway{}, &JupyterGatewayList{})
}
