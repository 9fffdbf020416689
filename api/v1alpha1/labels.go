package v1alpha1

// Labels, annotations and names through which the controller, the webhook, the gateway and
// the kernel launcher find each other's objects. They are part of the API: changing one breaks
// running installations.
const (
	// LabelComponent is the standard component label. Kernel pods carry it with the value
	// ComponentKernel; the mutating webhook selects pods by it and by nothing else.
	LabelComponent = "app.kubernetes.io/component"
	// LabelManagedBy is the standard managed-by label, set to ManagedBy on every object the
	// controller creates.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelName is the standard name label.
	LabelName = "app.kubernetes.io/name"
	// LabelInstance is the standard instance label; it holds the owning CR's name.
	LabelInstance = "app.kubernetes.io/instance"

	// ComponentKernel is the LabelComponent value of kernel pods.
	ComponentKernel = "kernel"
	// ComponentKernelConnection is the LabelComponent value of kernel connection Secrets.
	ComponentKernelConnection = "kernel-connection"
	// ComponentGateway is the LabelComponent value of a gateway's objects.
	ComponentGateway = "gateway"
	// ComponentNotebook is the LabelComponent value of a notebook's objects.
	ComponentNotebook = "notebook"
	// ManagedBy is the LabelManagedBy value of the objects the controller creates.
	ManagedBy = "elastic-jupyter"

	// LabelKernelID holds a kernel's id (a UUID, also the JupyterKernel's name) on the
	// kernel's Pod and connection Secret.
	LabelKernelID = "kubeflow.tkestack.io/kernel-id"
	// LabelKernelSpec holds the name of the JupyterKernelSpec a kernel was made from, on the
	// JupyterKernel and its Pod.
	LabelKernelSpec = "kubeflow.tkestack.io/kernelspec"
	// LabelGateway holds the name of the JupyterGateway that manages a kernel, on the
	// JupyterKernel and its Pod. A gateway lists only the kernels that carry its name (and
	// namespace, AnnotationGatewayNamespace), so two gateways never manage the same kernel.
	LabelGateway = "kubeflow.tkestack.io/gateway"

	// AnnotationCredential marks a notebook's own gateway token Secret (value "notebook"):
	// its gateway learns the token's hash and the notebook as the identity behind it.
	AnnotationCredential = "kubeflow.tkestack.io/credential"
	// LabelUser names the user a JupyterNotebook is for, when its spec.user is empty.
	LabelUser = "kubeflow.tkestack.io/user"

	// AnnotationGatewayNamespace holds the namespace of the JupyterGateway that manages a
	// kernel, next to LabelGateway.
	AnnotationGatewayNamespace = "kubeflow.tkestack.io/gateway-namespace"
	// AnnotationOwner holds the identity that started a kernel (a notebook server's
	// "<namespace>/<name>", or "admin"), on its JupyterKernel: only that identity (and the
	// gateway's admins) may see and use the kernel.
	AnnotationOwner = "kubeflow.tkestack.io/owner"
	// AnnotationKernelSpec holds "<namespace>/<name>" of the JupyterKernelSpec a kernel pod
	// was made from; the mutating webhook reads the kernelspec's GPU request and interrupt
	// mode through it.
	AnnotationKernelSpec = "kubeflow.tkestack.io/kernelspec"
	// AnnotationConnectionSecret holds the name of a kernel pod's connection Secret (in the
	// pod's namespace); the mutating webhook mounts it into the kernel container.
	AnnotationConnectionSecret = "kubeflow.tkestack.io/connection-secret"
	// AnnotationRequestedAt holds when a kernel pod was asked for (RFC 3339 with nanoseconds):
	// the controller sets it as it creates the pod for a start or a resume, and the GPU queue
	// serves pods in that order (a creation timestamp has only seconds).
	AnnotationRequestedAt = "kubeflow.tkestack.io/requested-at"
	// AnnotationLauncherInjected is set by the mutating webhook on a pod it has mutated, so
	// a second invocation changes nothing.
	AnnotationLauncherInjected = "kubeflow.tkestack.io/launcher-injected"

	// GPUQueueGate is the scheduling gate the mutating webhook puts on kernel pods that ask for
	// GPUs; the controller removes it in the order the pods arrived, as GPUs come free, so
	// kernels waiting for the same GPUs start first come, first served.
	GPUQueueGate = "kubeflow.tkestack.io/gpu-queue"

	// StateFinalizer holds a JupyterKernel whose saved variables wait on its state volume
	// until the controller has removed them.
	StateFinalizer = "kubeflow.tkestack.io/kernel-state"
	// StateVolumeName is the kernel pod volume of the kernelspec's state claim; it is mounted
	// at StateMountPath in the kernel container.
	StateVolumeName = "kernel-state"
	// StateMountPath is where kernel pods mount their state volume (launcher.DefaultStateDir).
	StateMountPath = "/var/lib/elastic-jupyter/state"
	// StateHelperPath is the kernel launcher's state helper in kernel pods (the webhook's
	// launcher mount, /opt/elastic-jupyter, then launcher.StateHelperFile).
	StateHelperPath = "/opt/elastic-jupyter/lib/elastic_jupyter_state.py"

	// KernelContainerName is the name of the container that runs the kernel. A pod without a
	// container of that name has its first container treated as the kernel.
	KernelContainerName = "kernel"

	// ConnectionFileKey is the key of a connection Secret that holds the Jupyter connection
	// file (JSON: transport, signature_scheme, key, the five ports, kernel_name; ip left for
	// the launcher to fill in with the pod IP).
	ConnectionFileKey = "connection.json"
	// ConnectionSecretSuffix is appended to a JupyterKernel's name to name its connection
	// Secret.
	ConnectionSecretSuffix = "-connection"

	// ConnectionFilePlaceholder is replaced in a kernelspec's command by the path of the
	// connection file.
	ConnectionFilePlaceholder = "{connection_file}"
)

// ConnectionSecretName returns the name of the connection Secret of the JupyterKernel named
// kernelName.
func ConnectionSecretName(kernelName string) string {
	return kernelName + ConnectionSecretSuffix
}
