package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// JupyterNotebookSpec is the desired state of a JupyterNotebook: a notebook server in a small
// CPU pod whose kernels run remotely behind a JupyterGateway.
type JupyterNotebookSpec struct {
	// gateway references the JupyterGateway that runs this notebook's kernels. Only name and
	// namespace are read; namespace defaults to the notebook's own. Without a gateway the
	// notebook server runs its kernels locally, in its own pod.
	// +optional
	Gateway *corev1.ObjectReference `json:"gateway,omitempty"`

	// auth configures how users authenticate to the notebook server. Without it the
	// controller generates a token and keeps it in a Secret.
	// +optional
	Auth *JupyterAuth `json:"auth,omitempty"`

	// user is who this notebook server is for. Its kernels run for this user (their spec.user
	// and KERNEL_USERNAME) and belong to this notebook server: its gateway shows them to no
	// other notebook server. Defaults to the label kubeflow.tkestack.io/user, else the
	// notebook's name.
	// +kubebuilder:validation:MaxLength=253
	// +optional
	User string `json:"user,omitempty"`

	// template is merged over the notebook pod's defaults (a stock Jupyter image, non-root,
	// probes on /api): labels and annotations are added, a container named "notebook" (or
	// the first container) is merged field by field, other containers and volumes are added.
	// +optional
	Template *corev1.PodTemplateSpec `json:"template,omitempty"`
}

// JupyterAuth configures the notebook server's authentication.
type JupyterAuth struct {
	// mode is "enable" (a token or password is required; the default) or "disable" (no
	// authentication at all: only behind another layer that authenticates users).
	// +kubebuilder:default=enable
	// +optional
	Mode ModeJupyterAuth `json:"mode,omitempty"`

	// token is a literal token, kept for compatibility with the original project. It is
	// stored in plain text in this object; prefer secretRef. The controller copies it into
	// the notebook's Secret and never into the pod spec.
	// +optional
	Token *string `json:"token,omitempty"`

	// password is a literal password hash or password, kept for compatibility with the
	// original project, with the same caveats as token. Prefer secretRef.
	// +optional
	Password *string `json:"password,omitempty"`

	// secretRef names a Secret in the notebook's namespace whose key "token" (and/or
	// "password") holds the credentials. When neither this nor token nor password is set
	// and mode is enable, the controller creates "<notebook>-auth" with a random token.
	// +optional
	SecretRef *corev1.LocalObjectReference `json:"secretRef,omitempty"`
}

// NotebookPhase is a coarse summary of a notebook's state.
// +kubebuilder:validation:Enum=Pending;Running;Failed
type NotebookPhase string

const (
	// NotebookPending means the notebook's pod is not ready yet.
	NotebookPending NotebookPhase = "Pending"
	// NotebookRunning means the notebook server is ready to serve.
	NotebookRunning NotebookPhase = "Running"
	// NotebookFailed means the notebook cannot run as specified (see conditions).
	NotebookFailed NotebookPhase = "Failed"
)

// JupyterNotebookStatus is the observed state of a JupyterNotebook.
type JupyterNotebookStatus struct {
	// phase is Pending, Running or Failed.
	// +optional
	Phase NotebookPhase `json:"phase,omitempty"`

	// url is the notebook server's in-cluster URL.
	// +optional
	URL string `json:"url,omitempty"`

	// gatewayURL is the in-cluster URL of the gateway the notebook server uses, if any.
	// +optional
	GatewayURL string `json:"gatewayURL,omitempty"`

	// readyReplicas is the number of ready notebook server pods (0 or 1).
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`

	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready, and GatewayFound when a gateway is referenced.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// JupyterNotebook is a notebook server (Jupyter Server / JupyterLab) whose kernels run
// remotely, each in its own pod behind a JupyterGateway.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=jnb,categories=jupyter
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Ready",type=integer,JSONPath=`.status.readyReplicas`
// +kubebuilder:printcolumn:name="Gateway",type=string,JSONPath=`.spec.gateway.name`
// +kubebuilder:printcolumn:name="URL",type=string,JSONPath=`.status.url`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type JupyterNotebook struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +optional
	Spec JupyterNotebookSpec `json:"spec,omitempty"`
	// status is the observed state.
	// +optional
	Status JupyterNotebookStatus `json:"status,omitempty"`
}

// JupyterNotebookList is a list of JupyterNotebooks.
//
// +kubebuilder:object:root=true
type JupyterNotebookList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the JupyterNotebooks.
	Items []JupyterNotebook `json:"items"`
}

func init() {
	SchemeBuilder.Register(&JupyterNotebook{}, &JupyterNotebookList{})
}
