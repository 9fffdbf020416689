// Package v1alpha1 holds the elastic-jupyter API: JupyterNotebook, JupyterGateway,
// JupyterKernel, JupyterKernelSpec and JupyterKernelTemplate in the group
// kubeflow.tkestack.io (the original project's group, so its manifests apply unchanged).
//
// +kubebuilder:object:generate=true
// +groupName=kubeflow.tkestack.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "kubeflow.tkestack.io", Version: "v1alpha1"}

	// SchemeBuilder registers the kinds of this package with a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the kinds of this package to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
