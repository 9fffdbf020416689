package scheme

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// New knows every kind a component reads or writes, by its group, version and kind.
func TestNewKnowsTheKubernetesAndElasticJupyterKinds(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range []runtime.Object{
		&corev1.Pod{}, &corev1.Secret{}, &appsv1.Deployment{}, &rbacv1.RoleBinding{},
		&ejv1.JupyterNotebook{}, &ejv1.JupyterGateway{}, &ejv1.JupyterKernel{},
		&ejv1.JupyterKernelSpec{}, &ejv1.JupyterKernelTemplate{}, &ejv1.JupyterKernelList{},
	} {
		gvks, _, err := s.ObjectKinds(obj)
		if err != nil || len(gvks) == 0 {
			t.Errorf("%T is not in the scheme: %v", obj, err)
		}
	}
	gvks, _, err := s.ObjectKinds(&ejv1.JupyterKernel{})
	if err != nil || gvks[0] != ejv1.GroupVersion.WithKind("JupyterKernel") {
		t.Errorf("JupyterKernel's kind is %v (%v), want %v", gvks, err, ejv1.GroupVersion.WithKind("JupyterKernel"))
	}
}
