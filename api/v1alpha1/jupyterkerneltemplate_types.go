package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// JupyterKernelTemplateSpec is the desired state of a JupyterKernelTemplate.
type JupyterKernelTemplateSpec struct {
	// template is the pod template kernels start from. Its metadata (labels, annotations)
	// is kept and reaches the kernel pods. The container named "kernel" (or the first) runs
	// the kernel; the kernelspec's image, command, env and resources are applied to it.
	// +optional
	Template *corev1.PodTemplateSpec `json:"template,omitempty"`
}

// JupyterKernelTemplateStatus is the observed state of a JupyterKernelTemplate.
type JupyterKernelTemplateStatus struct {
	// observedGeneration is the generation of the spec this status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// JupyterKernelTemplate is a reusable pod template for kernels (node selection, volumes,
// sidecars, security settings).
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=jkt,categories=jupyter
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Image",type=string,JSONPath=`.spec.template.spec.containers[0].image`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type JupyterKernelTemplate struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the desired state.
	// +optional
	Spec JupyterKernelTemplateSpec `json:"spec,omitempty"`
	// status is the observed state.
	// +optional
	Status JupyterKernelTemplateStatus `json:"status,omitempty"`
}

// JupyterKernelTemplateList is a list of JupyterKernelTemplates.
//
// +kubebuilder:object:root=true
type JupyterKernelTemplateList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the JupyterKernelTemplates.
	Items []JupyterKernelTemplate `json:"items"`
}

func init() {
	SchemeBuilder.Register(&JupyterKernelTemplate{}, &JupyterKernelTemplateList{})
}
