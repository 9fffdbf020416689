package devnode

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// unsupportedError is a pod devnode cannot run as asked (a volume type, a probe kind); the pod
// fails with reason Unsupported and this message.
type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string { return e.msg }

// volumeSetupError is a volume that cannot be prepared yet (a Secret that does not exist);
// the containers wait with reason ContainerCreating and devnode tries again.
type volumeSetupError struct {
	volume string
	err    error
}

func (e *volumeSetupError) Error() string {
	return fmt.Sprintf("MountVolume.SetUp failed for volume %q: %v", e.volume, e.err)
}

func (e *volumeSetupError) Unwrap() error { return e.err }

// tokenGetter issues service account tokens for projected volumes.
type tokenGetter interface {
	token(ctx context.Context, pod *corev1.Pod, src *corev1.ServiceAccountTokenProjection) (string, error)
}

// claimGetter reads the PersistentVolumeClaims a pod's volumes name and the
// PersistentVolumes they are bound to.
type claimGetter interface {
	persistentVolumeClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error)
	persistentVolume(ctx context.Context, name string) (*corev1.PersistentVolume, error)
}

// volumeOwner returns who owns the files of a pod's volumes: the user every container runs as
// when they all run as the same non-root user (so a non-root kernel can read a Secret mounted
// with mode 0400), else root; and the pod's fsGroup, if any.
func volumeOwner(pod *corev1.Pod) (uid int, fsGroup *int64) {
	var psc *corev1.PodSecurityContext
	if pod.Spec.SecurityContext != nil {
		psc = pod.Spec.SecurityContext
		fsGroup = psc.FSGroup
	}
	var user *int64
	same := true
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for i := range list {
			u := effectiveUser(psc, list[i].SecurityContext)
			switch {
			case u == nil:
				same = false
			case user == nil:
				user = u
			case *user != *u:
				same = false
			}
		}
	}
	if same && user != nil {
		uid = int(*user)
	}
	return uid, fsGroup
}

func effectiveUser(psc *corev1.PodSecurityContext, sc *corev1.SecurityContext) *int64 {
	if sc != nil && sc.RunAsUser != nil {
		return sc.RunAsUser
	}
	if psc != nil {
		return psc.RunAsUser
	}
	return nil
}

// volumeWriter writes the files of a pod's volumes into its volumes directory.
type volumeWriter struct {
	dir     string // <pod dir>/volumes
	facts   *podFacts
	get     objectGetter
	claims  claimGetter
	tokens  tokenGetter
	uid     int
	fsGroup *int64
}

// setup prepares every volume of the pod and returns the host path of each by name.
// emptyDir directories keep their contents across calls; the others are written afresh.
func (w *volumeWriter) setup(ctx context.Context) (map[string]string, error) {
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		return nil, err
	}
	paths := map[string]string{}
	for i := range w.facts.pod.Spec.Volumes {
		v := &w.facts.pod.Spec.Volumes[i]
		p, err := w.volume(ctx, v)
		if err != nil {
			var unsupported *unsupportedError
			if errors.As(err, &unsupported) {
				return nil, err
			}
			return nil, &volumeSetupError{volume: v.Name, err: err}
		}
		paths[v.Name] = p
	}
	return paths, nil
}

func (w *volumeWriter) volume(ctx context.Context, v *corev1.Volume) (string, error) {
	path := filepath.Join(w.dir, v.Name)
	ns := w.facts.pod.Namespace
	switch {
	case v.EmptyDir != nil:
		if err := os.MkdirAll(path, 0o777); err != nil {
			return "", err
		}
		if err := os.Chmod(path, 0o777); err != nil {
			return "", err
		}
		return path, w.applyFSGroup(path, false)
	case v.HostPath != nil:
		return hostPathVolume(v.HostPath)
	case v.PersistentVolumeClaim != nil:
		return w.claimVolume(ctx, v.PersistentVolumeClaim)
	case v.Secret != nil:
		files := map[string]file{}
		s, err := w.get.secret(ctx, ns, v.Secret.SecretName)
		if err != nil {
			if !(isOptional(v.Secret.Optional) && isNotFound(err)) {
				return "", err
			}
		} else if err := addKeys(files, s.Data, v.Secret.Items, v.Secret.DefaultMode, isOptional(v.Secret.Optional), "secret "+v.Secret.SecretName); err != nil {
			return "", err
		}
		return path, w.writeFiles(path, files)
	case v.ConfigMap != nil:
		files := map[string]file{}
		cm, err := w.get.configMap(ctx, ns, v.ConfigMap.Name)
		if err != nil {
			if !(isOptional(v.ConfigMap.Optional) && isNotFound(err)) {
				return "", err
			}
		} else if err := addKeys(files, configMapData(cm), v.ConfigMap.Items, v.ConfigMap.DefaultMode, isOptional(v.ConfigMap.Optional), "configmap "+v.ConfigMap.Name); err != nil {
			return "", err
		}
		return path, w.writeFiles(path, files)
	case v.DownwardAPI != nil:
		files := map[string]file{}
		if err := w.addDownward(files, v.DownwardAPI.Items, v.DownwardAPI.DefaultMode); err != nil {
			return "", err
		}
		return path, w.writeFiles(path, files)
	case v.Projected != nil:
		files, err := w.projected(ctx, v.Projected)
		if err != nil {
			return "", err
		}
		return path, w.writeFiles(path, files)
	}
	return "", &unsupportedError{msg: fmt.Sprintf("volume %q: this volume type is not supported by devnode: use emptyDir, hostPath, persistentVolumeClaim, secret, configMap, downwardAPI or projected", v.Name)}
}

// file is one file of a volume.
type file struct {
	data []byte
	mode os.FileMode
}

func modeOr(m *int32, def os.FileMode) os.FileMode {
	if m != nil {
		return os.FileMode(*m) & os.ModePerm
	}
	return def
}

func configMapData(cm *corev1.ConfigMap) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range cm.Data {
		out[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		out[k] = v
	}
	return out
}

// addKeys adds a Secret's or ConfigMap's keys as files: the listed items, else every key.
func addKeys(files map[string]file, data map[string][]byte, items []corev1.KeyToPath, defMode *int32, optional bool, what string) error {
	mode := modeOr(defMode, 0o644)
	if len(items) == 0 {
		for k, v := range data {
			files[k] = file{data: v, mode: mode}
		}
		return nil
	}
	for _, it := range items {
		v, ok := data[it.Key]
		if !ok {
			if optional {
				continue
			}
			return fmt.Errorf("%s has no key %q", what, it.Key)
		}
		files[it.Path] = file{data: v, mode: modeOr(it.Mode, mode)}
	}
	return nil
}

func (w *volumeWriter) addDownward(files map[string]file, items []corev1.DownwardAPIVolumeFile, defMode *int32) error {
	mode := modeOr(defMode, 0o644)
	for _, it := range items {
		var v string
		var err error
		switch {
		case it.FieldRef != nil:
			v, err = w.facts.fieldValue(it.FieldRef.FieldPath)
		case it.ResourceFieldRef != nil:
			v, err = w.facts.resourceValue(it.ResourceFieldRef, nil)
		}
		if err != nil {
			return &unsupportedError{msg: fmt.Sprintf("downwardAPI item %q: %v", it.Path, err)}
		}
		files[it.Path] = file{data: []byte(v), mode: modeOr(it.Mode, mode)}
	}
	return nil
}

func (w *volumeWriter) projected(ctx context.Context, p *corev1.ProjectedVolumeSource) (map[string]file, error) {
	files := map[string]file{}
	ns := w.facts.pod.Namespace
	for i, src := range p.Sources {
		switch {
		case src.Secret != nil:
			s, err := w.get.secret(ctx, ns, src.Secret.Name)
			if err != nil {
				if isOptional(src.Secret.Optional) && isNotFound(err) {
					continue
				}
				return nil, err
			}
			if err := addKeys(files, s.Data, src.Secret.Items, p.DefaultMode, isOptional(src.Secret.Optional), "secret "+src.Secret.Name); err != nil {
				return nil, err
			}
		case src.ConfigMap != nil:
			cm, err := w.get.configMap(ctx, ns, src.ConfigMap.Name)
			if err != nil {
				if isOptional(src.ConfigMap.Optional) && isNotFound(err) {
					continue
				}
				return nil, err
			}
			if err := addKeys(files, configMapData(cm), src.ConfigMap.Items, p.DefaultMode, isOptional(src.ConfigMap.Optional), "configmap "+src.ConfigMap.Name); err != nil {
				return nil, err
			}
		case src.DownwardAPI != nil:
			if err := w.addDownward(files, src.DownwardAPI.Items, p.DefaultMode); err != nil {
				return nil, err
			}
		case src.ServiceAccountToken != nil:
			tok, err := w.tokens.token(ctx, w.facts.pod, src.ServiceAccountToken)
			if err != nil {
				return nil, fmt.Errorf("requesting a token for service account %q: %w", w.facts.pod.Spec.ServiceAccountName, err)
			}
			files[src.ServiceAccountToken.Path] = file{data: []byte(tok), mode: modeOr(p.DefaultMode, 0o600)}
		default:
			return nil, &unsupportedError{msg: fmt.Sprintf("projected source %d: only secret, configMap, downwardAPI and serviceAccountToken sources are supported by devnode", i)}
		}
	}
	return files, nil
}

// writeFiles replaces dir with a directory holding files, owned as the volumeWriter says.
func (w *volumeWriter) writeFiles(dir string, files map[string]file) error {
	tmp := dir + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	for rel, f := range files {
		clean := filepath.Clean(rel)
		if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
			return fmt.Errorf("item path %q leaves the volume: use a relative path without '..'", rel)
		}
		p := filepath.Join(tmp, clean)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			return err
		}
		if err := os.Chown(p, w.uid, w.gid()); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	if err := w.applyFSGroup(tmp, true); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

func (w *volumeWriter) gid() int {
	if w.fsGroup != nil {
		return int(*w.fsGroup)
	}
	return 0
}

// applyFSGroup gives the fsGroup access to everything under dir, as the kubelet does: group
// ownership, group read (and write unless readOnly) and set-group-ID directories.
func (w *volumeWriter) applyFSGroup(dir string, readOnly bool) error {
	if w.fsGroup == nil {
		return nil
	}
	gid := int(*w.fsGroup)
	mask := os.FileMode(0o660)
	if readOnly {
		mask = 0o440
	}
	// A file that goes while the walk runs (a shared volume another pod writes to) is skipped;
	// only dir itself must exist.
	gone := func(p string, err error) bool { return p != dir && errors.Is(err, fs.ErrNotExist) }
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if gone(p, err) {
				return nil
			}
			return err
		}
		info, err := d.Info()
		if err != nil {
			if gone(p, err) {
				return nil
			}
			return err
		}
		if err := os.Lchown(p, -1, gid); err != nil {
			if gone(p, err) {
				return nil
			}
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			return nil
		}
		m := info.Mode()&os.ModePerm | mask
		if d.IsDir() {
			m |= os.ModeSetgid | 0o110
		}
		if err := os.Chmod(p, m); err != nil && !gone(p, err) {
			return err
		}
		return nil
	})
}

// claimVolume resolves a persistentVolumeClaim volume as the kubelet does: the claim, in the
// pod's namespace, must be Bound to a PersistentVolume bound back to it. devnode mounts
// hostPath and local PersistentVolumes: a directory on this machine, the same for every
// devnode on it. Unless the claim is mounted readOnly, the fsGroup gets the directory as for
// an emptyDir (a kubelet does that for local volumes, not hostPath ones; devnode does it for
// both, so a non-root pod can write to a directory created for it).
func (w *volumeWriter) claimVolume(ctx context.Context, src *corev1.PersistentVolumeClaimVolumeSource) (string, error) {
	ns, name := w.facts.pod.Namespace, src.ClaimName
	pvc, err := w.claims.persistentVolumeClaim(ctx, ns, name)
	if isNotFound(err) {
		return "", fmt.Errorf("persistentvolumeclaim %q not found in namespace %s: create it, bound to a hostPath or local PersistentVolume; devnode starts the pod once it is Bound", name, ns)
	}
	if err != nil {
		return "", fmt.Errorf("getting persistentvolumeclaim %q: %w", name, err)
	}
	if pvc.DeletionTimestamp != nil {
		return "", fmt.Errorf("persistentvolumeclaim %q is being deleted: create it again once it is gone", name)
	}
	if pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.VolumeName == "" {
		phase := pvc.Status.Phase
		if phase == "" {
			phase = corev1.ClaimPending
		}
		return "", fmt.Errorf("persistentvolumeclaim %q is not bound (status.phase %s, spec.volumeName %q): create a PersistentVolume for it (spec.claimRef naming it, or a matching storageClassName, accessModes and capacity) with the persistentvolume-binder-controller running; devnode starts the pod once the claim is Bound", name, phase, pvc.Spec.VolumeName)
	}
	pv, err := w.claims.persistentVolume(ctx, pvc.Spec.VolumeName)
	if isNotFound(err) {
		return "", fmt.Errorf("persistentvolumeclaim %q is bound to PV %s, which does not exist: create the PV or bind the claim again", name, pvc.Spec.VolumeName)
	}
	if err != nil {
		return "", fmt.Errorf("getting PV %s of persistentvolumeclaim %q: %w", pvc.Spec.VolumeName, name, err)
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.UID != pvc.UID {
		return "", fmt.Errorf("PV %s is not bound to persistentvolumeclaim %q (spec.claimRef %s): wait for the binder, or fix the PV's spec.claimRef", pv.Name, name, describeClaimRef(ref))
	}
	var path string
	switch {
	case pv.Spec.HostPath != nil:
		if path, err = hostPathVolume(pv.Spec.HostPath); err != nil {
			return "", fmt.Errorf("PV %s: %w", pv.Name, err)
		}
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("PV %s: hostPath %s does not exist: create it, or set hostPath.type DirectoryOrCreate", pv.Name, path)
		}
	case pv.Spec.Local != nil:
		path = filepath.Clean(pv.Spec.Local.Path)
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("PV %s: local path %s does not exist on this machine: create it", pv.Name, path)
		}
	default:
		return "", fmt.Errorf("PV %s: only hostPath and local volumes are supported by devnode: back persistentvolumeclaim %q with a hostPath or local PV", pv.Name, name)
	}
	if src.ReadOnly {
		return path, nil
	}
	if err := w.applyFSGroup(path, false); err != nil {
		return "", fmt.Errorf("PV %s: giving %s to the pod's fsGroup: %w", pv.Name, path, err)
	}
	return path, nil
}

func describeClaimRef(ref *corev1.ObjectReference) string {
	if ref == nil {
		return "unset"
	}
	return fmt.Sprintf("%s/%s uid %q", ref.Namespace, ref.Name, ref.UID)
}

// hostPathVolume checks a hostPath volume's type (creating it for the *OrCreate types) and
// returns its path.
func hostPathVolume(h *corev1.HostPathVolumeSource) (string, error) {
	p := filepath.Clean(h.Path)
	t := corev1.HostPathUnset
	if h.Type != nil {
		t = *h.Type
	}
	st, err := os.Stat(p)
	switch t {
	case corev1.HostPathUnset:
		return p, nil
	case corev1.HostPathDirectoryOrCreate:
		if err != nil {
			return p, os.MkdirAll(p, 0o755)
		}
		if !st.IsDir() {
			return "", fmt.Errorf("hostPath %s exists and is not a directory", p)
		}
		return p, nil
	case corev1.HostPathFileOrCreate:
		if err != nil {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return "", err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return "", err
			}
			return p, f.Close()
		}
		if st.IsDir() {
			return "", fmt.Errorf("hostPath %s is a directory, not a file", p)
		}
		return p, nil
	}
	if err != nil {
		return "", fmt.Errorf("hostPath %s of type %s does not exist", p, t)
	}
	want := map[corev1.HostPathType]func(os.FileMode) bool{
		corev1.HostPathDirectory: func(m os.FileMode) bool { return m.IsDir() },
		corev1.HostPathFile:      func(m os.FileMode) bool { return m.IsRegular() },
		corev1.HostPathSocket:    func(m os.FileMode) bool { return m&os.ModeSocket != 0 },
		corev1.HostPathCharDev:   func(m os.FileMode) bool { return m&os.ModeCharDevice != 0 },
		corev1.HostPathBlockDev:  func(m os.FileMode) bool { return m&os.ModeDevice != 0 && m&os.ModeCharDevice == 0 },
	}
	if check, ok := want[t]; ok && !check(st.Mode()) {
		return "", fmt.Errorf("hostPath %s is not of type %s", p, t)
	}
	return p, nil
}
