package controller_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

func readyReason[T interface {
	client.Object
	*ejv1.JupyterKernelSpec | *ejv1.JupyterKernelTemplate
}](obj T) (string, bool) {
	var conds []metav1.Condition
	var observed, gen int64
	switch o := any(obj).(type) {
	case *ejv1.JupyterKernelSpec:
		conds, observed, gen = o.Status.Conditions, o.Status.ObservedGeneration, o.Generation
	case *ejv1.JupyterKernelTemplate:
		conds, observed, gen = o.Status.Conditions, o.Status.ObservedGeneration, o.Generation
	}
	c := meta.FindStatusCondition(conds, ejv1.ConditionReady)
	if c == nil || observed != gen || c.ObservedGeneration != gen {
		return "", false
	}
	return c.Reason, c.Status == metav1.ConditionTrue
}

// assertNotReady waits until ks reports whether it is Ready, and checks that it is not, for
// reason, with a message that mentions what.
func assertNotReady(t *testing.T, ks *ejv1.JupyterKernelSpec, reason, mentions string) {
	t.Helper()
	got := eventually(t, client.ObjectKeyFromObject(ks), &ejv1.JupyterKernelSpec{}, func(k *ejv1.JupyterKernelSpec) bool {
		r, _ := readyReason(k)
		return r != ""
	}, "the kernelspec reports its state")
	r, ok := readyReason(got)
	assert.False(t, ok)
	assert.Equal(t, reason, r)
	assert.Contains(t, meta.FindStatusCondition(got.Status.Conditions, ejv1.ConditionReady).Message, mentions)
}

func TestKernelSpecWithAMissingTemplateRecoversWhenItAppears(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	ks := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: "later", Namespace: ns}}
	ks.Spec.Command = []string{"python3", "-m", "ipykernel_launcher", "-f", ejv1.ConnectionFilePlaceholder}
	ks.Spec.Template = &corev1.ObjectReference{Name: "not-yet"}
	require.NoError(t, k8s.Create(ctx, ks))
	assertNotReady(t, ks, "TemplateNotFound", "not-yet")

	// A kernel of it waits, and says why.
	k := &ejv1.JupyterKernel{ObjectMeta: metav1.ObjectMeta{Name: "7d6c5b4a-3928-4176-8a5b-4c3d2e1f0a98", Namespace: ns}}
	k.Spec.KernelSpec = &ejv1.ObjectRef{Name: "later"}
	require.NoError(t, k8s.Create(ctx, k))
	pending := kernelIn(t, k, func(k *ejv1.JupyterKernel) bool { return k.Status.Reason == "TemplateNotFound" }, "the kernel waits for the template")
	assert.Equal(t, ejv1.KernelPending, pending.Status.Phase)

	tmpl := &ejv1.JupyterKernelTemplate{ObjectMeta: metav1.ObjectMeta{Name: "not-yet", Namespace: ns}}
	tmpl.Spec.Template = &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "kernel", Image: "python:3.12"}}}}
	require.NoError(t, k8s.Create(ctx, tmpl))
	eventually(t, client.ObjectKeyFromObject(ks), &ejv1.JupyterKernelSpec{}, func(k *ejv1.JupyterKernelSpec) bool {
		_, ok := readyReason(k)
		return ok
	}, "the kernelspec turns Ready once its template exists")
	eventually(t, client.ObjectKeyFromObject(tmpl), &ejv1.JupyterKernelTemplate{}, func(t *ejv1.JupyterKernelTemplate) bool {
		_, ok := readyReason(t)
		return ok
	}, "the template is Ready")
	pod := exists(t, ns, k.Name, &corev1.Pod{})
	assert.Equal(t, "python:3.12", pod.Spec.Containers[0].Image, "the kernel's pod comes from the late template")

	// Deleting the template makes the kernelspec unusable again, without any crash.
	require.NoError(t, k8s.Delete(ctx, tmpl))
	eventually(t, client.ObjectKeyFromObject(ks), &ejv1.JupyterKernelSpec{}, func(k *ejv1.JupyterKernelSpec) bool {
		r, ok := readyReason(k)
		return !ok && r == "TemplateNotFound"
	}, "the kernelspec reports its template gone")
}

func TestKernelSpecWithoutAnImageIsNotReady(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	ks := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: "noimage", Namespace: ns}}
	ks.Spec.Command = []string{"kernel"}
	require.NoError(t, k8s.Create(ctx, ks))
	assertNotReady(t, ks, "InvalidSpec", "spec.image")

	// A kernel that names a missing kernelspec waits and says so.
	k := &ejv1.JupyterKernel{ObjectMeta: metav1.ObjectMeta{Name: "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d", Namespace: ns}}
	k.Spec.KernelSpec = &ejv1.ObjectRef{Name: "missing"}
	require.NoError(t, k8s.Create(ctx, k))
	kernelIn(t, k, func(k *ejv1.JupyterKernel) bool { return k.Status.Reason == "KernelSpecNotFound" }, "the kernel reports its kernelspec missing")
}
