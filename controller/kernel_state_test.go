package controller_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

// stateKernel is a kernel of a kernelspec that keeps state on claim.
func stateKernel(t *testing.T, ns, id, claim string) *ejv1.JupyterKernel {
	t.Helper()
	k := kernelFixture(t, ns, id)
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		ks := &ejv1.JupyterKernelSpec{}
		if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "python3-gpu"}, ks); err != nil {
			return err
		}
		ks.Spec.State = &ejv1.KernelState{Volume: claim, MaxBytes: ptr.To(resource.MustParse("100Mi"))}
		return k8s.Update(context.Background(), ks)
	}))
	return k
}

// TestKernelPodsMountTheirKernelspecsStateVolume: the kernel pod mounts the claim where the
// launcher's helper saves and loads, and the kernel's status says so for the gateway.
func TestKernelPodsMountTheirKernelspecsStateVolume(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	k := stateKernel(t, ns, "4b3a2918-0706-4f5e-9d4c-3b2a19080706", "team-state")
	require.NoError(t, k8s.Create(ctx, k))
	pod := kernelPod(t, k, "")
	var claim string
	for _, v := range pod.Spec.Volumes {
		if v.Name == ejv1.StateVolumeName && v.PersistentVolumeClaim != nil {
			claim = v.PersistentVolumeClaim.ClaimName
		}
	}
	assert.Equal(t, "team-state", claim, "the pod has the kernelspec's state claim")
	assert.Contains(t, pod.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: ejv1.StateVolumeName, MountPath: ejv1.StateMountPath})
	k = kernelIn(t, k, func(k *ejv1.JupyterKernel) bool { return k.Status.State != nil }, "the status says where the kernel keeps its state")
	assert.Equal(t, "team-state", k.Status.State.Volume)
	assert.EqualValues(t, 100<<20, k.Status.State.MaxBytes)
}

// TestDeletedKernelsSavedStateIsRemoved: a kernel deleted while its variables wait on the
// state volume goes only once a cleanup pod has removed them; without its claim it goes at once.
func TestDeletedKernelsSavedStateIsRemoved(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "team-state", Namespace: ns},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	require.NoError(t, k8s.Create(ctx, pvc))
	k := stateKernel(t, ns, "6d5c4b3a-2918-4706-9f5e-4d3c2b1a0908", "team-state")
	require.NoError(t, k8s.Create(ctx, k))
	k = kernelIn(t, k, func(k *ejv1.JupyterKernel) bool { return k.Status.State != nil }, "the kernel keeps state")
	// The gateway saved the variables at a suspension.
	addFinalizer(t, k)
	require.NoError(t, k8s.Delete(ctx, k))

	cleanup := eventually(t, types.NamespacedName{Namespace: ns, Name: k.Name + "-state-cleanup"}, &corev1.Pod{},
		func(*corev1.Pod) bool { return true }, "a pod removes the saved variables")
	c := cleanup.Spec.Containers[0]
	assert.Equal(t, []string{version.LauncherPath, "state", "remove", "--dir", ejv1.StateMountPath, "--kernel", k.Name}, c.Command)
	assert.Equal(t, "team-state", cleanup.Spec.Volumes[0].PersistentVolumeClaim.ClaimName)
	assert.True(t, *cleanup.Spec.SecurityContext.RunAsNonRoot)
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(k), k))
	assert.False(t, k.DeletionTimestamp.IsZero(), "the kernel waits for its state to be removed")

	kubeletStatus(t, cleanup, func(s *corev1.PodStatus) { s.Phase = corev1.PodSucceeded })
	gone(t, ns, k.Name, &ejv1.JupyterKernel{})
	assertEvent(t, k, "StateRemoved")

	// Without its claim, nothing is left to remove.
	other := stateKernel(t, ns, "8f7e6d5c-4b3a-4918-8706-5f4e3d2c1b0a", "no-such-claim")
	require.NoError(t, k8s.Create(ctx, other))
	other = kernelIn(t, other, func(k *ejv1.JupyterKernel) bool { return k.Status.State != nil }, "the kernel keeps state")
	addFinalizer(t, other)
	require.NoError(t, k8s.Delete(ctx, other))
	gone(t, ns, other.Name, &ejv1.JupyterKernel{})
}

// addFinalizer adds the state finalizer, as the gateway does when it saved a kernel's variables.
func addFinalizer(t *testing.T, k *ejv1.JupyterKernel) {
	t.Helper()
	require.NoError(t, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(k), k); err != nil {
			return err
		}
		controllerutil.AddFinalizer(k, ejv1.StateFinalizer)
		return k8s.Update(context.Background(), k)
	}))
}
