package devnode

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

func TestVolumeOwner(t *testing.T) {
	u := func(v int64) *int64 { return &v }
	pod := func(psc *corev1.PodSecurityContext, users ...*int64) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{SecurityContext: psc}}
		for _, user := range users {
			c := corev1.Container{}
			if user != nil {
				c.SecurityContext = &corev1.SecurityContext{RunAsUser: user}
			}
			p.Spec.Containers = append(p.Spec.Containers, c)
		}
		return p
	}
	for _, tc := range []struct {
		name    string
		pod     *corev1.Pod
		uid     int
		fsGroup *int64
	}{
		{"pod user", pod(&corev1.PodSecurityContext{RunAsUser: u(1000), FSGroup: u(2000)}, nil, nil), 1000, u(2000)},
		{"same container users", pod(nil, u(1000), u(1000)), 1000, nil},
		{"different users", pod(nil, u(1000), u(1001)), 0, nil},
		{"one unset", pod(nil, u(1000), nil), 0, nil},
	} {
		uid, fsGroup := volumeOwner(tc.pod)
		assert.Equal(t, tc.uid, uid, tc.name)
		assert.Equal(t, tc.fsGroup, fsGroup, tc.name)
	}
}

func TestVolumeFiles(t *testing.T) {
	objs := &fakeObjects{
		secrets:    map[string]*corev1.Secret{"conn": {Data: map[string][]byte{"connection.json": []byte(`{"key":"k"}`), "other": []byte("o")}}},
		configMaps: map[string]*corev1.ConfigMap{"cfg": {Data: map[string]string{"a.yaml": "a: 1"}, BinaryData: map[string][]byte{"b.bin": {0, 1}}}},
	}
	fsGroup := int64(3000)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"b": "2", "a": "1"}},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "conn", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "conn", DefaultMode: ptrTo[int32](0o400),
				Items: []corev1.KeyToPath{{Key: "connection.json", Path: "sub/connection.json"}}}}},
			{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}},
			{Name: "info", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "ip", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}},
			}}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "opt", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "absent", Optional: ptrTo(true)}}},
		}},
	}
	dir := t.TempDir()
	w := &volumeWriter{dir: dir, facts: &podFacts{pod: pod, podIP: netip.MustParseAddr("127.0.0.9")}, get: objs, uid: 1000, fsGroup: &fsGroup}
	paths, err := w.setup(context.Background())
	require.NoError(t, err)
	for name := range map[string]bool{"conn": true, "cfg": true, "info": true, "scratch": true, "opt": true} {
		assert.Equal(t, filepath.Join(dir, name), paths[name])
	}
	check := func(rel string, content string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, rel)
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		assert.Equal(t, content, string(data), rel)
		st, err := os.Stat(p)
		require.NoError(t, err)
		assert.Equal(t, mode, st.Mode().Perm(), rel)
	}
	check("conn/sub/connection.json", `{"key":"k"}`, 0o440)
	_, err = os.Stat(filepath.Join(dir, "conn", "other"))
	assert.True(t, os.IsNotExist(err), "an unlisted key was written")
	check("cfg/a.yaml", "a: 1", 0o644)
	check("cfg/b.bin", "\x00\x01", 0o644)
	check("info/labels", "a=\"1\"\nb=\"2\"", 0o644)
	check("info/ip", "127.0.0.9", 0o644)
	st, err := os.Stat(filepath.Join(dir, "scratch"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o777), st.Mode().Perm())
	assert.NotZero(t, st.Mode()&os.ModeSetgid, "an fsGroup emptyDir is set-group-ID")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "scratch", "keep"), []byte("x"), 0o644))
	objs.secrets["conn"].Data["connection.json"] = []byte("v2")
	_, err = w.setup(context.Background())
	require.NoError(t, err)
	check("scratch/keep", "x", 0o664)
	check("conn/sub/connection.json", "v2", 0o440)

	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"}}})
	_, err = w.setup(context.Background())
	var unsupported *unsupportedError
	require.ErrorAs(t, err, &unsupported)
	assert.Contains(t, err.Error(), `volume "nfs": this volume type is not supported by devnode`)

	pod.Spec.Volumes = []corev1.Volume{{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "absent"}}}}
	_, err = w.setup(context.Background())
	var setupErr *volumeSetupError
	require.ErrorAs(t, err, &setupErr)
	assert.True(t, strings.HasPrefix(err.Error(), `MountVolume.SetUp failed for volume "s": secrets "absent" not found`), err.Error())
}

// fakeClaims holds PersistentVolumeClaims (of any namespace) and PersistentVolumes by name.
type fakeClaims struct {
	pvcs map[string]*corev1.PersistentVolumeClaim
	pvs  map[string]*corev1.PersistentVolume
}

func (f *fakeClaims) persistentVolumeClaim(_ context.Context, _, name string) (*corev1.PersistentVolumeClaim, error) {
	if c, ok := f.pvcs[name]; ok {
		return c, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumeclaims"}, name)
}

func (f *fakeClaims) persistentVolume(_ context.Context, name string) (*corev1.PersistentVolume, error) {
	if v, ok := f.pvs[name]; ok {
		return v, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "persistentvolumes"}, name)
}

// A persistentVolumeClaim volume resolves to its bound PV's directory; until it can, setup
// says which claim is wrong and what to do, and the pod waits.
func TestClaimVolume(t *testing.T) {
	dir := t.TempDir()
	shared := filepath.Join(dir, "shared")
	claims := &fakeClaims{pvcs: map[string]*corev1.PersistentVolumeClaim{}, pvs: map[string]*corev1.PersistentVolume{}}
	fsGroup := int64(3000)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{{Name: "state", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "state"}}}}},
	}
	w := &volumeWriter{dir: filepath.Join(dir, "pod"), facts: &podFacts{pod: pod}, get: &fakeObjects{}, claims: claims, uid: 1000, fsGroup: &fsGroup}
	setupErr := func(want string) {
		t.Helper()
		_, err := w.setup(context.Background())
		var se *volumeSetupError
		require.ErrorAs(t, err, &se, "the pod waits")
		assert.Contains(t, err.Error(), `MountVolume.SetUp failed for volume "state": `+want)
	}
	setupErr(`persistentvolumeclaim "state" not found in namespace ns: create it`)

	claims.pvcs["state"] = &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "state", Namespace: "ns", UID: "claim-uid"}}
	setupErr(`persistentvolumeclaim "state" is not bound (status.phase Pending, spec.volumeName ""): create a PersistentVolume for it`)

	claims.pvcs["state"].Spec.VolumeName = "pv-1"
	claims.pvcs["state"].Status.Phase = corev1.ClaimBound
	setupErr(`persistentvolumeclaim "state" is bound to PV pv-1, which does not exist`)

	claims.pvs["pv-1"] = &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-1"}, Spec: corev1.PersistentVolumeSpec{
		ClaimRef:               &corev1.ObjectReference{Namespace: "ns", Name: "state", UID: "other-uid"},
		PersistentVolumeSource: corev1.PersistentVolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/x"}},
	}}
	setupErr(`PV pv-1 is not bound to persistentvolumeclaim "state" (spec.claimRef ns/state uid "other-uid")`)

	claims.pvs["pv-1"].Spec.ClaimRef.UID = "claim-uid"
	setupErr(`PV pv-1: only hostPath and local volumes are supported by devnode: back persistentvolumeclaim "state" with a hostPath or local PV`)

	claims.pvs["pv-1"].Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: shared}}
	setupErr(`PV pv-1: local path ` + shared + ` does not exist on this machine: create it`)

	claims.pvs["pv-1"].Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: shared}}
	setupErr(`PV pv-1: hostPath ` + shared + ` does not exist: create it, or set hostPath.type DirectoryOrCreate`)

	claims.pvs["pv-1"].Spec.HostPath.Type = ptrTo(corev1.HostPathDirectoryOrCreate)
	paths, err := w.setup(context.Background())
	require.NoError(t, err)
	assert.Equal(t, shared, paths["state"], "the PV's own directory, not a copy")
	st, err := os.Stat(shared)
	require.NoError(t, err)
	assert.NotZero(t, st.Mode()&os.ModeSetgid, "a writable claim's directory is set-group-ID for the fsGroup")
	assert.Equal(t, os.FileMode(0o775), st.Mode().Perm(), "the fsGroup may write")
	assert.Equal(t, uint32(fsGroup), st.Sys().(*syscall.Stat_t).Gid)

	// Mounted readOnly, the directory is left as it is.
	other := filepath.Join(dir, "other")
	require.NoError(t, os.Mkdir(other, 0o755))
	claims.pvs["pv-1"].Spec.PersistentVolumeSource = corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: other}}
	pod.Spec.Volumes[0].PersistentVolumeClaim.ReadOnly = true
	paths, err = w.setup(context.Background())
	require.NoError(t, err)
	assert.Equal(t, other, paths["state"])
	st, err = os.Stat(other)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), st.Mode()&(os.ModePerm|os.ModeSetgid))
	assert.Zero(t, st.Sys().(*syscall.Stat_t).Gid)
	ms, err := mounts(pod, &corev1.Container{Name: "c", VolumeMounts: []corev1.VolumeMount{{Name: "state", MountPath: "/state"}}}, paths, newEnvList())
	require.NoError(t, err)
	require.Len(t, ms, 1)
	assert.True(t, ms[0].ReadOnly, "a readOnly claim is mounted read-only")
}

func TestHostPathVolume(t *testing.T) {
	dir := t.TempDir()
	typ := func(t corev1.HostPathType) *corev1.HostPathType { return &t }
	p, err := hostPathVolume(&corev1.HostPathVolumeSource{Path: filepath.Join(dir, "new"), Type: typ(corev1.HostPathDirectoryOrCreate)})
	require.NoError(t, err)
	st, err := os.Stat(p)
	require.NoError(t, err)
	assert.True(t, st.IsDir())
	_, err = hostPathVolume(&corev1.HostPathVolumeSource{Path: filepath.Join(dir, "new"), Type: typ(corev1.HostPathFile)})
	assert.ErrorContains(t, err, "is not of type File")
	_, err = hostPathVolume(&corev1.HostPathVolumeSource{Path: filepath.Join(dir, "absent"), Type: typ(corev1.HostPathDirectory)})
	assert.ErrorContains(t, err, "does not exist")
	p, err = hostPathVolume(&corev1.HostPathVolumeSource{Path: filepath.Join(dir, "f"), Type: typ(corev1.HostPathFileOrCreate)})
	require.NoError(t, err)
	st, err = os.Stat(p)
	require.NoError(t, err)
	assert.True(t, st.Mode().IsRegular())
}

// A pod with the projected volume the API server's ServiceAccount admission adds
// (kube-api-access: a bound token, the cluster CA, the namespace) talks to the API server as
// its service account, through KUBERNETES_SERVICE_HOST/PORT, as in-cluster clients do.
func TestProjectedServiceAccountToken(t *testing.T) {
	env := controlPlane(t)
	n := startNode(t, Options{})
	ns := newNamespace(t, n.cs)
	_, err := n.cs.CoreV1().ServiceAccounts(ns).Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "kernel"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = n.cs.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "kube-root-ca.crt"},
		Data:       map[string]string{"ca.crt": string(env.Config.CAData)},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	script := `
import json, os, ssl, urllib.request, urllib.error
d = "/var/run/secrets/kubernetes.io/serviceaccount"
ns = open(d + "/namespace").read()
ctx = ssl.create_default_context(cafile=d + "/ca.crt")
url = "https://%s:%s/api/v1/namespaces/%s/secrets" % (os.environ["KUBERNETES_SERVICE_HOST"], os.environ["KUBERNETES_SERVICE_PORT"], ns)
req = urllib.request.Request(url, headers={"Authorization": "Bearer " + open(d + "/token").read()})
try:
    urllib.request.urlopen(req, context=ctx)
    print("allowed")
except urllib.error.HTTPError as e:
    print(e.code, json.load(e)["message"])
`
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "in-cluster"},
		Spec: corev1.PodSpec{
			RestartPolicy:      corev1.RestartPolicyNever,
			ServiceAccountName: "kernel",
			SecurityContext:    &corev1.PodSecurityContext{RunAsUser: ptrTo[int64](1000)},
			Volumes: []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: ptrTo[int32](0o644),
				Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptrTo[int64](3607)}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
				},
			}}}},
			Containers: []corev1.Container{{
				Name: "main", Image: hostImage, Command: []string{"python3", "-c", script},
				VolumeMounts: []corev1.VolumeMount{{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}},
			}},
		},
	}
	created := createPod(t, n.cs, ns, p)
	done := waitPod(t, n.cs, ns, "in-cluster", 60*time.Second, "finished", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	log := n.readLog(t, created, "main", 0)
	require.Equal(t, corev1.PodSucceeded, done.Status.Phase, log)
	assert.Contains(t, log, `403 secrets is forbidden: User "system:serviceaccount:`+ns+`:kernel" cannot list resource "secrets"`)
}

// createClaim creates a 1Gi ReadWriteMany PersistentVolumeClaim without a storage class.
func createClaim(t *testing.T, cs kubernetes.Interface, ns, name string) *corev1.PersistentVolumeClaim {
	t.Helper()
	pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			StorageClassName: ptrTo(""),
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return pvc
}

// bindHostPath creates a hostPath PersistentVolume at path (DirectoryOrCreate) and binds the
// claim to it as the persistentvolume-binder-controller does (the tests' control plane runs
// none): the PV's spec.claimRef, the claim's spec.volumeName and bind-completed annotation
// (which kube-scheduler looks for), both statuses Bound. The PV is deleted when the test ends.
func bindHostPath(t *testing.T, cs kubernetes.Interface, pvc *corev1.PersistentVolumeClaim, path string) {
	t.Helper()
	ctx := context.Background()
	pv, err := cs.CoreV1().PersistentVolumes().Create(ctx, &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: pvc.Namespace + "-" + pvc.Name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes:                   []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: ptrTo(corev1.HostPathDirectoryOrCreate)}},
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: pvc.Namespace, Name: pvc.Name, UID: pvc.UID},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = cs.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
	pv.Status.Phase = corev1.VolumeBound
	_, err = cs.CoreV1().PersistentVolumes().UpdateStatus(ctx, pv, metav1.UpdateOptions{})
	require.NoError(t, err)
	pvc, err = cs.CoreV1().PersistentVolumeClaims(pvc.Namespace).Get(ctx, pvc.Name, metav1.GetOptions{})
	require.NoError(t, err)
	pvc.Spec.VolumeName = pv.Name
	metav1.SetMetaDataAnnotation(&pvc.ObjectMeta, "pv.kubernetes.io/bind-completed", "yes")
	pvc, err = cs.CoreV1().PersistentVolumeClaims(pvc.Namespace).Update(ctx, pvc, metav1.UpdateOptions{})
	require.NoError(t, err)
	pvc.Status.Phase = corev1.ClaimBound
	pvc.Status.AccessModes = pv.Spec.AccessModes
	pvc.Status.Capacity = pv.Spec.Capacity
	_, err = cs.CoreV1().PersistentVolumeClaims(pvc.Namespace).UpdateStatus(ctx, pvc, metav1.UpdateOptions{})
	require.NoError(t, err)
}

// claimPod runs script as uid 1000 (fsGroup 1000, as kernel pods run) with the claim mounted
// at /state.
func claimPod(name, claim string, readOnly bool, script string) *corev1.Pod {
	p := shellPod(name, corev1.RestartPolicyNever, script)
	p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptrTo[int64](1000), RunAsGroup: ptrTo[int64](1000), FSGroup: ptrTo[int64](1000)}
	p.Spec.Volumes = []corev1.Volume{{Name: "state", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim, ReadOnly: readOnly}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "state", MountPath: "/state"}}
	return p
}

func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// A pod running as uid 1000 writes to a claim bound to a hostPath PV: the file is in the PV's
// directory on the host, owned by that user. A pod mounting the claim readOnly reads it and
// cannot write.
func TestPVCVolumeHostPath(t *testing.T) {
	n := startNode(t, Options{})
	ns := newNamespace(t, n.cs)
	dir := filepath.Join(t.TempDir(), "volumes", "state")
	bindHostPath(t, n.cs, createClaim(t, n.cs, ns, "state"), dir)

	w := createPod(t, n.cs, ns, claimPod("writer", "state", false, `echo "saved by $(id -u)" > /state/kernel.pickle && ls -ld /state`))
	done := waitPod(t, n.cs, ns, "writer", 60*time.Second, "finished", finished)
	require.Equal(t, corev1.PodSucceeded, done.Status.Phase, n.readLog(t, w, "main", 0))
	data, err := os.ReadFile(filepath.Join(dir, "kernel.pickle"))
	require.NoError(t, err, "the file is in the PV's host directory")
	assert.Equal(t, "saved by 1000\n", string(data))
	st, err := os.Stat(filepath.Join(dir, "kernel.pickle"))
	require.NoError(t, err)
	assert.Equal(t, uint32(1000), st.Sys().(*syscall.Stat_t).Uid)
	assert.Equal(t, uint32(1000), st.Sys().(*syscall.Stat_t).Gid, "files in the set-group-ID directory belong to the fsGroup")

	r := createPod(t, n.cs, ns, claimPod("reader", "state", true, `cat /state/kernel.pickle; if echo x > /state/new; then echo "wrote to a readOnly claim"; exit 1; fi`))
	done = waitPod(t, n.cs, ns, "reader", 60*time.Second, "finished", finished)
	log := n.readLog(t, r, "main", 0)
	require.Equal(t, corev1.PodSucceeded, done.Status.Phase, log)
	assert.Contains(t, log, "saved by 1000")
	assert.Contains(t, log, "Read-only file system")
	_, err = os.Stat(filepath.Join(dir, "new"))
	assert.True(t, os.IsNotExist(err), "the readOnly pod wrote to the host directory")
}

// A pod whose claim is missing, then unbound, waits in ContainerCreating with a message naming
// the claim and the fix, and starts once the claim is Bound. (The pod names its node: the
// scheduler would not place a pod whose claim is missing or unbound.)
func TestPVCVolumeWaitsForClaim(t *testing.T) {
	n := startNode(t, Options{})
	ns := newNamespace(t, n.cs)
	dir := filepath.Join(t.TempDir(), "volumes", "state")
	p := claimPod("waits", "state", false, `echo ok > /state/out`)
	p.Spec.NodeName = n.name
	createPod(t, n.cs, ns, p)
	waiting := func(want string) func(*corev1.Pod) bool {
		return func(p *corev1.Pod) bool {
			s := containerStatusOf(p, "main")
			return s != nil && s.State.Waiting != nil && s.State.Waiting.Reason == "ContainerCreating" &&
				strings.Contains(s.State.Waiting.Message, want)
		}
	}
	got := waitPod(t, n.cs, ns, "waits", 60*time.Second, "waiting for the missing claim", waiting(`persistentvolumeclaim "state" not found in namespace `+ns+`: create it`))
	assert.Equal(t, corev1.PodPending, got.Status.Phase)

	pvc := createClaim(t, n.cs, ns, "state")
	waitPod(t, n.cs, ns, "waits", 60*time.Second, "waiting for the unbound claim", waiting(`persistentvolumeclaim "state" is not bound (status.phase Pending`))

	bindHostPath(t, n.cs, pvc, dir)
	done := waitPod(t, n.cs, ns, "waits", 60*time.Second, "finished", finished)
	require.Equal(t, corev1.PodSucceeded, done.Status.Phase, describeStatus(done))
	data, err := os.ReadFile(filepath.Join(dir, "out"))
	require.NoError(t, err)
	assert.Equal(t, "ok\n", string(data))
}
