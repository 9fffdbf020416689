package v1alpha1

// ObjectRef names an object of a known kind, optionally in another namespace.
type ObjectRef struct {
	// name is the referenced object's name.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// namespace is the referenced object's namespace. Empty means the namespace of the
	// object that holds the reference, unless the field's documentation says otherwise.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// ModeJupyterAuth says whether a Jupyter server requires authentication.
// +kubebuilder:validation:Enum=enable;disable
type ModeJupyterAuth string

const (
	// ModeJupyterAuthEnable requires a token (or password) from every client.
	ModeJupyterAuthEnable ModeJupyterAuth = "enable"
	// ModeJupyterAuthDisable disables authentication altogether. NOT RECOMMENDED unless
	// authentication or access restrictions are handled at a different layer.
	ModeJupyterAuthDisable ModeJupyterAuth = "disable"
)

// Condition types shared by several kinds.
const (
	// ConditionReady is True when the object is usable: its workloads are ready, or, for
	// kernelspecs and templates, every reference resolves.
	ConditionReady = "Ready"
	// ConditionKernelSpecsFound is True on a JupyterGateway when every kernelspec its
	// spec.kernels (and spec.defaultKernel) names exists; False names the missing ones, which
	// the gateway does not offer.
	ConditionKernelSpecsFound = "KernelSpecsFound"
)
