package devnode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/rootfs"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

// The stock Jupyter image, run from the JupyterLab rootfs of hack/rootfs.sh (Debian trixie,
// JupyterLab 4.0.11) as `make up` runs it.
const (
	notebookRepository = "quay.io/jupyter/base-notebook"
	notebookImage      = notebookRepository + ":2024-10-07"
)

var (
	rootfsOnce sync.Once
	rootfsDir  string
	rootfsErr  error
)

// jupyterRootfs returns the JupyterLab rootfs, built by hack/rootfs.sh when missing.
func jupyterRootfs(t testing.TB) string {
	t.Helper()
	rootfsOnce.Do(func() { rootfsDir, rootfsErr = rootfs.Ensure(testenv.RepoRoot()) })
	require.NoError(t, rootfsErr)
	return rootfsDir
}

// A container of an --image-root image runs on the image's own files, as under a container
// runtime: trixie's Python and JupyterLab, none of the host's files or mounts (only /proc,
// /dev, /sys, resolv.conf, devnode's /etc/hosts and its volumes), the standard PATH, as uid
// 1000 with a writable emptyDir HOME and /tmp, a working pty and /dev/shm; its exec
// readiness probe runs inside it as its user.
func TestImageRootRunsJupyterLab(t *testing.T) {
	dir := jupyterRootfs(t)
	n := startNode(t, Options{ImageRoot: []ImageMapping{{Image: notebookRepository, Dir: dir}}})
	ns := newNamespace(t, n.cs)
	script := `set -e
echo "jupyterlab $(python3 -c 'import jupyterlab, sys; print(jupyterlab.__version__)')"
. /etc/os-release
echo "codename $VERSION_CODENAME"
echo "debian $(cat /etc/debian_version)"
if [ -e /work ]; then echo "the host's /work is visible"; fi
echo "id $(id -u) $(id -g)"
echo "home $HOME $(pwd)"
echo "path $PATH"
echo saved > "$HOME/notes.txt"
echo scratch > /tmp/scratch
echo shared > /dev/shm/x
python3 -c 'import os; m, s = os.openpty(); print("pty", os.ttyname(s))'
echo "--- mounts"
cut -d' ' -f5 /proc/self/mountinfo
echo "--- hosts"
cat /etc/hosts
echo "--- resolv.conf"
cat /etc/resolv.conf
echo "--- end"
touch /tmp/ready
trap 'exit 0' TERM
sleep 3600 & wait
`
	uid, gid := int64(1000), int64(100)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "lab"},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			TerminationGracePeriodSeconds: ptrTo[int64](10),
			SecurityContext:               &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &gid, FSGroup: &gid},
			Volumes:                       []corev1.Volume{{Name: "home", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
			Containers: []corev1.Container{{
				Name: "main", Image: notebookImage,
				Command:      []string{"sh", "-c", script},
				Env:          []corev1.EnvVar{{Name: "HOME", Value: "/home/jovyan"}},
				WorkingDir:   "/home/jovyan",
				VolumeMounts: []corev1.VolumeMount{{Name: "home", MountPath: "/home/jovyan"}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}},
					PeriodSeconds: 1,
				},
			}},
		},
	}
	created := createPod(t, n.cs, ns, p)
	ready := waitPod(t, n.cs, ns, "lab", 60*time.Second, "Ready", podReady)
	log := n.waitLog(t, created, "main", 0, "--- end")
	status := containerStatusOf(ready, "main")
	assert.Equal(t, ImageIDRoot+dir, status.ImageID)
	assert.Equal(t, notebookImage, status.Image)

	assert.Contains(t, log, "jupyterlab 4.0.11\n")
	assert.Contains(t, log, "codename trixie\n")
	assert.Contains(t, log, "debian 13", "/etc/debian_version is the image's, not the host's")
	assert.NotContains(t, log, "the host's /work is visible")
	assert.Contains(t, log, "id 1000 100\n")
	assert.Contains(t, log, "home /home/jovyan /home/jovyan\n")
	assert.Contains(t, log, "path "+StandardPath+"\n")
	assert.Contains(t, log, "pty /dev/pts/0\n", "a fresh devpts instance")

	section := func(name string) string {
		_, rest, ok := strings.Cut(log, "--- "+name+"\n")
		require.True(t, ok, "no %s in the log:\n%s", name, log)
		s, _, _ := strings.Cut(rest, "\n--- ")
		return s
	}
	allowed := func(m string) bool {
		switch m {
		case "/", "/proc", "/dev", "/sys", "/etc/resolv.conf", "/etc/hosts", "/home/jovyan":
			return true
		}
		return strings.HasPrefix(m, "/dev/") || strings.HasPrefix(m, "/sys/")
	}
	mountPoints := strings.Split(section("mounts"), "\n")
	for _, m := range mountPoints {
		assert.True(t, allowed(m), "the container sees the mount %s (of the host?); all: %v", m, mountPoints)
	}
	for _, m := range []string{"/", "/proc", "/dev", "/dev/pts", "/dev/shm", "/sys", "/etc/resolv.conf", "/etc/hosts", "/home/jovyan"} {
		assert.Contains(t, mountPoints, m)
	}
	podDir := PodDir(n.root, ns, "lab", created.UID)
	hosts, err := os.ReadFile(filepath.Join(podDir, hostsFileName))
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSuffix(string(hosts), "\n"), section("hosts"), "/etc/hosts is devnode's file for the pod")
	assert.Contains(t, string(hosts), ready.Status.PodIP+"\tlab\n")
	resolv, err := os.ReadFile("/etc/resolv.conf")
	require.NoError(t, err)
	assert.Equal(t, strings.TrimSuffix(string(resolv), "\n"), section("resolv.conf"), "/etc/resolv.conf is the host's")

	notes := filepath.Join(podDir, volumesDirName, "home", "notes.txt")
	data, err := os.ReadFile(notes)
	require.NoError(t, err, "HOME is the emptyDir")
	assert.Equal(t, "saved\n", string(data))
	st, err := os.Stat(notes)
	require.NoError(t, err)
	assert.Equal(t, uint32(1000), st.Sys().(*syscall.Stat_t).Uid)
	upper := filepath.Join(containerRunDir(podDir, "main", 0), upperDirName)
	assert.FileExists(t, filepath.Join(upper, "tmp", "scratch"), "/tmp is written in the run's upper directory")
	assert.NoFileExists(t, filepath.Join(dir, "tmp", "scratch"), "the container wrote to the rootfs")
	assert.NoFileExists(t, "/dev/shm/x", "/dev/shm is the container's own")

	require.NoError(t, n.cs.CoreV1().Pods(ns).Delete(context.Background(), "lab", metav1.DeleteOptions{}))
	waitPodGone(t, n.cs, ns, "lab", 30*time.Second)
}

// A container of an --image-root image running as root writes, replaces and deletes files
// all over its root, then fails: the cached rootfs does not change (the overlay's upper
// directory is the run's own), and the restarted run starts from the rootfs again.
func TestImageRootLeavesTheRootfsUnchanged(t *testing.T) {
	dir := jupyterRootfs(t)
	before := treeDigest(t, dir)
	n := startNode(t, Options{ImageRoot: []ImageMapping{{Image: notebookRepository, Dir: dir}}})
	ns := newNamespace(t, n.cs)
	script := `set -e
if [ -e /state/ran ]; then
  if [ -e /etc/devnode-was-here ] || [ ! -e /etc/debian_version ]; then echo "the first run's changes are back"; exit 2; fi
  echo "fresh root"
  exit 0
fi
echo "uid $(id -u)"
echo x > /etc/devnode-was-here
echo x > /usr/bin/devnode-was-here
echo x >> /etc/os-release
rm /etc/debian_version
rm -r /usr/share/doc
mkdir -p /opt/devnode/deep && echo x > /opt/devnode/deep/file
chmod 0700 /tmp
touch /usr/bin/python3
echo done
touch /state/ran
exit 1
`
	p := shellPod("writer", corev1.RestartPolicyOnFailure, script)
	p.Spec.Containers[0].Image = notebookImage
	p.Spec.Volumes = []corev1.Volume{{Name: "state", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	p.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "state", MountPath: "/state"}}
	created := createPod(t, n.cs, ns, p)
	done := waitPod(t, n.cs, ns, "writer", 60*time.Second, "finished", finished)
	first := n.readLog(t, created, "main", 0)
	require.Equal(t, corev1.PodSucceeded, done.Status.Phase, "%s\n%s", describeStatus(done), first)
	assert.Contains(t, first, "uid 0\n")
	assert.Contains(t, first, "done\n")
	assert.Equal(t, "fresh root\n", n.readLog(t, created, "main", 1))

	upper := filepath.Join(containerRunDir(PodDir(n.root, ns, "writer", created.UID), "main", 0), upperDirName)
	assert.FileExists(t, filepath.Join(upper, "etc", "devnode-was-here"), "the writes land in the run's upper directory")
	assert.NoFileExists(t, filepath.Join(dir, "etc", "devnode-was-here"))
	assert.FileExists(t, filepath.Join(dir, "etc", "debian_version"))
	assert.Equal(t, before, treeDigest(t, dir), "the rootfs changed")
}

// treeDigest hashes the name, mode, size and modification time of every file under dir.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v %d %d\n", p, info.Mode(), info.Size(), info.ModTime().UnixNano())
		return nil
	})
	require.NoError(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

// The kernel pod of the quick start, as the webhook makes it: the init container of the
// project's image (--image-map) installs kernel-launcher into an emptyDir, and the kernel
// container of the stock Jupyter image (--image-root, the trixie rootfs) runs trixie's
// ipykernel under the launcher from that emptyDir, as uid 1000, and turns Ready through the
// launcher's readiness probe; code runs on it.
func TestImageRootRunsKernelPod(t *testing.T) {
	img := projectImage(t)
	dir := jupyterRootfs(t)
	n := startNode(t, Options{
		ImageMap:  []ImageMapping{{Image: version.ImageRepository, Dir: img}},
		ImageRoot: []ImageMapping{{Image: notebookRepository, Dir: dir}},
	})
	ns := newNamespace(t, n.cs)

	k := startKernelPod(t, n, ns, notebookImage, "python3")
	assert.Equal(t, ImageIDDir+img, containerStatusOf(k.ready, "kernel-launcher-install").ImageID)
	assert.Equal(t, ImageIDRoot+dir, containerStatusOf(k.ready, ejv1.KernelContainerName).ImageID)

	res, err := k.conn.Execute(k.ctx, `import os, sys, platform, ipykernel, numpy, dill
print(os.getuid(), platform.freedesktop_os_release()["VERSION_CODENAME"], sys.executable, os.environ["HOME"])
print("ipykernel", ipykernel.__version__)
print(os.path.exists("/work"))
int(numpy.arange(4).sum())`)
	require.NoError(t, err)
	assert.Equal(t, "ok", res.Status, "%s: %s", res.EName, res.EValue)
	assert.Contains(t, res.Stdout, "1000 trixie /usr/bin/python3 /opt/elastic-jupyter/home\n")
	assert.Contains(t, res.Stdout, "ipykernel 6.29")
	assert.Contains(t, res.Stdout, "False\n", "the host's /work is visible to the kernel")
	assert.Equal(t, []string{"6"}, res.Results)
	log := n.readLog(t, k.created, ejv1.KernelContainerName, 0)
	assert.NotContains(t, log, k.info.Key, "the kernel's key reached its log")
}
