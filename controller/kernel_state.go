package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

// ComponentStateCleanup is the component label of the pods that remove a deleted kernel's
// saved variables.
const ComponentStateCleanup = "kernel-state-cleanup"

// stateCleanupPodName names the pod that removes kernel k's snapshot.
func stateCleanupPodName(k *ejv1.JupyterKernel) string {
	return k.Name + "-state-cleanup"
}

// desiredStateCleanupPod runs `kernel-launcher state remove` on the kernel's state volume:
// a suspended kernel's snapshot lives there, and no pod of the kernel runs to remove it.
func desiredStateCleanupPod(k *ejv1.JupyterKernel, claim, image string) *corev1.Pod {
	labels := commonLabels(ComponentStateCleanup, k.Name)
	labels[ejv1.LabelKernelID] = k.Name
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: stateCleanupPodName(k), Namespace: k.Namespace, Labels: labels},
		Spec: corev1.PodSpec{
			RestartPolicy:                corev1.RestartPolicyOnFailure,
			AutomountServiceAccountToken: ptr.To(false),
			EnableServiceLinks:           ptr.To(false),
			// Kernels write their snapshots as the kernels' default user.
			SecurityContext: nonRootPodSecurityContext(1000, 1000),
			Containers: []corev1.Container{{
				Name:    "remove",
				Image:   image,
				Command: []string{version.LauncherPath, "state", "remove", "--dir", ejv1.StateMountPath, "--kernel", k.Name},
				VolumeMounts: []corev1.VolumeMount{{
					Name: ejv1.StateVolumeName, MountPath: ejv1.StateMountPath,
				}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr.To(false), ReadOnlyRootFilesystem: ptr.To(true),
					Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
			}},
			Volumes: []corev1.Volume{{Name: ejv1.StateVolumeName, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
			}}},
		},
	}
}

// removeState removes a deleted kernel's saved variables from its state volume (with a pod
// that runs `kernel-launcher state remove`), then lets the kernel go.
func (r *KernelReconciler) removeState(ctx context.Context, k *ejv1.JupyterKernel) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(k, ejv1.StateFinalizer) {
		return ctrl.Result{}, nil // the garbage collector removes the pod and the Secret
	}
	log := logf.FromContext(ctx)
	claim := ""
	if k.Status.State != nil {
		claim = k.Status.State.Volume
	}
	done := claim == ""
	if !done {
		pvc := &corev1.PersistentVolumeClaim{}
		err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: claim}, pvc)
		switch {
		case apierrors.IsNotFound(err):
			done = true // the volume, and the snapshot with it, is gone
		case err != nil:
			return ctrl.Result{}, fmt.Errorf("reading the state volume %s: %w", claim, err)
		}
	}
	if !done {
		pod := &corev1.Pod{}
		err := r.Get(ctx, types.NamespacedName{Namespace: k.Namespace, Name: stateCleanupPodName(k)}, pod)
		switch {
		case apierrors.IsNotFound(err):
			desired := desiredStateCleanupPod(k, claim, r.LauncherImage)
			if err := controllerutil.SetControllerReference(k, desired, r.Scheme()); err != nil {
				return ctrl.Result{}, err
			}
			if err := r.Create(ctx, desired, client.FieldOwner(FieldOwner)); client.IgnoreAlreadyExists(err) != nil {
				return ctrl.Result{}, fmt.Errorf("creating the pod that removes the kernel's saved variables: %w", err)
			}
			log.Info("removing the deleted kernel's saved variables", "pod", desired.Name, "volume", claim)
			return ctrl.Result{}, nil // its pod's events bring the next reconcile
		case err != nil:
			return ctrl.Result{}, err
		case pod.Status.Phase != corev1.PodSucceeded:
			return ctrl.Result{}, nil
		}
		r.Recorder.Eventf(k, pod, eventNormal, "StateRemoved", "RemoveState", "removed the kernel's saved variables from volume %s", claim)
	}
	patched := k.DeepCopy()
	controllerutil.RemoveFinalizer(patched, ejv1.StateFinalizer)
	if err := r.Patch(ctx, patched, client.MergeFromWithOptions(k, client.MergeFromWithOptimisticLock{})); client.IgnoreNotFound(err) != nil {
		return ctrl.Result{}, fmt.Errorf("letting the kernel go: %w", err)
	}
	return ctrl.Result{}, nil
}
