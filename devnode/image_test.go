package devnode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

func TestImageMatches(t *testing.T) {
	for _, tc := range []struct {
		pattern, image string
		want           bool
	}{
		{"ghcr.io/elastic-jupyter/elastic-jupyter", "ghcr.io/elastic-jupyter/elastic-jupyter", true},
		{"ghcr.io/elastic-jupyter/elastic-jupyter", "ghcr.io/elastic-jupyter/elastic-jupyter:latest", true},
		{"ghcr.io/elastic-jupyter/elastic-jupyter", "ghcr.io/elastic-jupyter/elastic-jupyter@sha256:abc", true},
		{"ghcr.io/elastic-jupyter/elastic-jupyter", "ghcr.io/elastic-jupyter/elastic-jupyter-extra:1", false},
		{"ghcr.io/elastic-jupyter/elastic-jupyter:v1", "ghcr.io/elastic-jupyter/elastic-jupyter:v10", false},
		{"ghcr.io/elastic-jupyter/", "ghcr.io/elastic-jupyter/anything:1", true},
		{"ghcr.io/elastic-jupyter/", "ghcr.io/other/anything:1", false},
	} {
		assert.Equal(t, tc.want, imageMatches(tc.pattern, tc.image), "%s ~ %s", tc.pattern, tc.image)
	}
	o := Options{
		ImageMap:  []ImageMapping{{Image: "ghcr.io/", Dir: "/a"}, {Image: "ghcr.io/x/y", Dir: "/b"}},
		ImageRoot: []ImageMapping{{Image: "ghcr.io/x/", Dir: "/r"}, {Image: "quay.io/jupyter/base-notebook", Dir: "/nb"}},
	}
	assert.Equal(t, imageSource{dir: "/b"}, o.image("ghcr.io/x/y:1"), "the longest match wins")
	assert.Equal(t, imageSource{dir: "/r", root: true}, o.image("ghcr.io/x/z:1"), "the longest match over both lists wins")
	assert.Equal(t, imageSource{dir: "/a"}, o.image("ghcr.io/w/z:1"))
	assert.Equal(t, imageSource{}, o.image("docker.io/library/debian"))
	assert.Equal(t, imageSource{dir: "/nb", root: true}, o.image("quay.io/jupyter/base-notebook:2024-10-07"))
	assert.Equal(t, imageSource{}, o.image("quay.io/jupyter/base-notebook-extra:1"))

	assert.Equal(t, "devnode-root:///nb", o.image("quay.io/jupyter/base-notebook@sha256:abc").imageID("quay.io/jupyter/base-notebook@sha256:abc"))
	assert.Equal(t, "devnode-dir:///b", o.image("ghcr.io/x/y").imageID("ghcr.io/x/y"))
	assert.Equal(t, "docker.io/library/debian", o.image("docker.io/library/debian").imageID("docker.io/library/debian"))
}

// A kernel pod shaped as the webhook makes it: the launcher install init container runs the
// project image (mapped to a fresh build), the kernel container runs Debian's ipykernel under
// the launcher as uid 1000, reads its 0400 connection Secret, binds the pod IP and turns Ready
// through the launcher's /readyz. A client then executes code on it; the host's
// /usr/local/bin is untouched.
func TestMappedImageRunsKernelPod(t *testing.T) {
	img := projectImage(t)
	hostLauncher := filepath.Join("/usr/local/bin", filepath.Base(version.LauncherPath))
	_, statErr := os.Stat(hostLauncher)
	hostHadLauncher := statErr == nil
	n := startNode(t, Options{ImageMap: []ImageMapping{{Image: version.ImageRepository, Dir: img}}})
	ns := newNamespace(t, n.cs)

	k := startKernelPod(t, n, ns, "docker.io/jupyter/base-notebook:latest", "/usr/bin/python3")
	installer := containerStatusOf(k.ready, "kernel-launcher-install")
	assert.Equal(t, "devnode-dir://"+img, installer.ImageID)

	res, err := k.conn.Execute(k.ctx, "import os\nprint(os.getuid(), os.environ['HOME'], os.environ['KERNEL_ID'])\n1+1")
	require.NoError(t, err)
	assert.Equal(t, "ok", res.Status, "%s: %s", res.EName, res.EValue)
	assert.Equal(t, "1000 /opt/elastic-jupyter/home "+k.id+"\n", res.Stdout)
	assert.Equal(t, []string{"2"}, res.Results)

	_, statErr = os.Stat(hostLauncher)
	assert.Equal(t, hostHadLauncher, statErr == nil, "the image mapping changed the host's /usr/local/bin")
	log := n.readLog(t, k.created, ejv1.KernelContainerName, 0)
	assert.NotContains(t, log, k.info.Key, "the kernel's key reached its log")
	assert.False(t, strings.Contains(describeStatus(k.ready), k.info.Key))
}

// kernelRun is a kernel pod that turned Ready, with a client connected to its kernel.
type kernelRun struct {
	id             string
	created, ready *corev1.Pod
	info           *jupyter.ConnectionInfo
	conn           *kernelconn.Conn
	// ctx bounds the test's requests to the kernel.
	ctx context.Context
}

// startKernelPod creates a connection Secret and a kernel pod shaped as the webhook makes it
// (kernelPod), waits until the launcher's readiness probe passes and connects to the kernel.
func startKernelPod(t *testing.T, n *testNode, ns, kernelImage, python string) *kernelRun {
	t.Helper()
	info := kerneltest.NewConnectionInfo(t)
	info.IP = ""
	data, err := info.Marshal()
	require.NoError(t, err)
	const kernelID = "3f0c7f52-5b5c-4c0e-9d51-1f2d3c4b5a69"
	secret := ejv1.ConnectionSecretName(kernelID)
	_, err = n.cs.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: secret},
		Data:       map[string][]byte{ejv1.ConnectionFileKey: data},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	created := createPod(t, n.cs, ns, kernelPod(kernelID, secret, kernelImage, python))
	ready := waitPod(t, n.cs, ns, kernelID, 120*time.Second, "Ready", podReady)

	info.IP = ready.Status.PodIP
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	conn, err := kernelconn.Dial(ctx, info, kernelconn.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	require.NoError(t, conn.WaitIOPub(ctx))
	return &kernelRun{id: kernelID, created: created, ready: ready, info: info, conn: conn, ctx: ctx}
}

// kernelPod is a kernel pod as the webhook makes it: the kernel-launcher-install init
// container copies the launcher from the project's image into an emptyDir mounted at
// /opt/elastic-jupyter; the kernel container (kernelImage) runs python's ipykernel under the
// launcher as uid 1000, with its 0400 connection Secret, binding the pod IP, Ready through the
// launcher's /readyz.
func kernelPod(kernelID, secret, kernelImage, python string) *corev1.Pod {
	uid := int64(1000)
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: kernelID, Labels: map[string]string{ejv1.LabelComponent: ejv1.ComponentKernel, ejv1.LabelKernelID: kernelID}},
		Spec: corev1.PodSpec{
			RestartPolicy:   corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{RunAsUser: &uid, RunAsGroup: &uid, FSGroup: &uid, RunAsNonRoot: ptrTo(true)},
			Volumes: []corev1.Volume{
				{Name: "kernel-launcher", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "kernel-connection", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret, DefaultMode: ptrTo[int32](0o400)}}},
			},
			InitContainers: []corev1.Container{{
				Name: "kernel-launcher-install", Image: version.Image(),
				Command:      []string{version.LauncherPath, "install", "/opt/elastic-jupyter/bin"},
				VolumeMounts: []corev1.VolumeMount{{Name: "kernel-launcher", MountPath: "/opt/elastic-jupyter"}},
			}},
			Containers: []corev1.Container{{
				Name: ejv1.KernelContainerName, Image: kernelImage,
				Command: []string{"/opt/elastic-jupyter/bin/kernel-launcher", "run",
					"--connection-file", "/var/run/elastic-jupyter/connection/" + ejv1.ConnectionFileKey,
					"--runtime-dir", "/opt/elastic-jupyter/run", "--ip", "$(POD_IP)", "--control-port", "8778",
					"--interrupt-mode", launcher.InterruptSignal, "--",
					python, "-m", "ipykernel_launcher", "-f", ejv1.ConnectionFilePlaceholder},
				Env: []corev1.EnvVar{podIPEnv(), {Name: "HOME", Value: "/opt/elastic-jupyter/home"},
					{Name: "KERNEL_ID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['" + ejv1.LabelKernelID + "']"}}}},
				Ports: []corev1.ContainerPort{{Name: "launcher", ContainerPort: 8778}},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "kernel-launcher", MountPath: "/opt/elastic-jupyter"},
					{Name: "kernel-connection", MountPath: "/var/run/elastic-jupyter/connection", ReadOnly: true},
				},
				ReadinessProbe:  &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/readyz", Port: intstr.FromString("launcher")}}, PeriodSeconds: 1},
				LivenessProbe:   &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("launcher")}}, PeriodSeconds: 5},
				SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: ptrTo(false)},
			}},
		},
	}
}
