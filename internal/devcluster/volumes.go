package devcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// VolumesDir is where the cluster's hostPath PersistentVolumes keep their files: Dir/volumes.
// It is outside both devnodes' --root (Dir/devnode-cpu, Dir/devnode-gpu), so a claim bound to
// a PV there is the same directory on either node, as a ReadWriteMany volume is on a real
// cluster.
func (cl *Cluster) VolumesDir() string { return filepath.Join(cl.cfg.Dir, "volumes") }

// HostPathVolume returns the PersistentVolume name for the claim namespace/claim: hostPath
// VolumesDir/name (DirectoryOrCreate), ReadWriteMany, capacity size, reclaim policy Retain, no
// storage class, and spec.claimRef naming the claim, so kube-controller-manager's
// persistentvolume-binder-controller binds that claim, and only it, to this PV. The claim
// asks for storageClassName "" (or leaves it unset: the cluster has no default class), an
// access mode the PV has and at most size.
func (cl *Cluster) HostPathVolume(name, namespace, claim string, size resource.Quantity) *corev1.PersistentVolume {
	return &corev1.PersistentVolume{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolume"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: size},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "",
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: namespace, Name: claim},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{
				Path: filepath.Join(cl.VolumesDir(), name),
				Type: ptr.To(corev1.HostPathDirectoryOrCreate),
			}},
		},
	}
}

// CreateHostPathVolume creates HostPathVolume's directory and applies the PV (server-side, so
// running it again is safe). Creating the claim is the caller's part (a manifest in
// examples/, say).
func (cl *Cluster) CreateHostPathVolume(ctx context.Context, name, namespace, claim string, size resource.Quantity) error {
	pv := cl.HostPathVolume(name, namespace, claim, size)
	if err := os.MkdirAll(pv.Spec.HostPath.Path, 0o755); err != nil {
		return fmt.Errorf("creating the directory of PersistentVolume %s: %w", name, err)
	}
	data, err := json.Marshal(pv)
	if err != nil {
		return fmt.Errorf("encoding PersistentVolume %s: %w", name, err)
	}
	if err := cl.kubectlStdin(ctx, string(data), "apply", "--server-side", "--force-conflicts", "-f", "-"); err != nil {
		return fmt.Errorf("creating PersistentVolume %s for claim %s/%s: %w", name, namespace, claim, err)
	}
	return nil
}
