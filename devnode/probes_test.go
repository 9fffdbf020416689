package devnode

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
)

// Probes of each kind: an exec liveness probe that sees the container's private /tmp and
// restarts it when its file goes; a tcpSocket readiness probe that turns the pod Ready once
// the server listens; an httpGet readiness probe that keeps a pod unready while it fails.
func TestProbes(t *testing.T) {
	n := startNode(t, Options{})
	ns := newNamespace(t, n.cs)
	marker := "/tmp/devnode-alive-" + rand.String(8)

	live := shellPod("liveness", corev1.RestartPolicyAlways, "touch "+marker+"; echo started; sleep 2; rm "+marker+"; exec sleep 1000")
	live.Spec.TerminationGracePeriodSeconds = ptrTo[int64](1)
	live.Spec.Containers[0].LivenessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", marker}}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
	createPod(t, n.cs, ns, live)

	tcp := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "tcp"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Image: hostImage,
			Command:        []string{"/bin/sh", "-c", `sleep 1; exec python3 -m http.server --bind "$POD_IP" 9000`},
			Env:            []corev1.EnvVar{podIPEnv()},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9000)}}, PeriodSeconds: 1},
		}}},
	}
	createPod(t, n.cs, ns, tcp)

	unready := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "unready"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "main", Image: hostImage,
			Command: []string{"python3", "-m", "http.server", "--bind", "$(POD_IP)", "9000"},
			Env:     []corev1.EnvVar{podIPEnv()},
			ReadinessProbe: &corev1.Probe{
				ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/missing", Port: intstr.FromInt32(9000)}},
				PeriodSeconds: 1, FailureThreshold: 1,
			},
		}}},
	}
	unreadyPod := createPod(t, n.cs, ns, unready)

	got := waitPod(t, n.cs, ns, "liveness", 60*time.Second, "restarted by its liveness probe", func(p *corev1.Pod) bool {
		s := containerStatusOf(p, "main")
		return s != nil && s.RestartCount >= 1 && s.LastTerminationState.Terminated != nil
	})
	last := containerStatusOf(got, "main").LastTerminationState.Terminated
	assert.Contains(t, last.Message, "Liveness probe failed")
	assert.Contains(t, last.Message, "test -f "+marker)
	_, err := os.Stat(marker)
	assert.True(t, os.IsNotExist(err), "the container's /tmp is the host's")

	got = waitPod(t, n.cs, ns, "tcp", 60*time.Second, "Ready", podReady)
	s := containerStatusOf(got, "main")
	assert.True(t, s.Ready)
	require.NotNil(t, s.Started)
	assert.True(t, *s.Started)

	n.waitLog(t, unreadyPod, "main", 0, `"GET /missing HTTP/1.1" 404`)
	require.True(t, assertEventually(10*time.Second, func() bool {
		data, _ := os.ReadFile(LogPath(n.root, ns, "unready", unreadyPod.UID, "main", 0))
		return strings.Count(string(data), `"GET /missing HTTP/1.1" 404`) >= 2
	}))
	got = waitPod(t, n.cs, ns, "unready", 10*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	assert.False(t, podReady(got), "a pod whose readiness probe fails is Ready")
	for _, c := range got.Status.Conditions {
		if c.Type == corev1.ContainersReady {
			assert.Equal(t, "containers with unready status: [main]", c.Message)
		}
	}
}

// restartPolicy: OnFailure restarts a failed container until it succeeds; Always restarts
// one that exits 0; Never leaves a failed container failed.
func TestRestartPolicies(t *testing.T) {
	n := startNode(t, Options{})
	ns := newNamespace(t, n.cs)
	onFailure := shellPod("on-failure", corev1.RestartPolicyOnFailure, `if [ -f /data/once ]; then echo second; exit 0; fi; touch /data/once; echo first; exit 3`)
	onFailure.Spec.Volumes = []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	onFailure.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	onFailure.Spec.Containers[0].TerminationMessagePolicy = corev1.TerminationMessageFallbackToLogsOnError
	of := createPod(t, n.cs, ns, onFailure)
	createPod(t, n.cs, ns, shellPod("always", corev1.RestartPolicyAlways, "echo run; exit 0"))
	createPod(t, n.cs, ns, shellPod("never", corev1.RestartPolicyNever, "echo oops; exit 2"))

	got := waitPod(t, n.cs, ns, "on-failure", 60*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	s := containerStatusOf(got, "main")
	assert.Equal(t, int32(1), s.RestartCount)
	require.NotNil(t, s.LastTerminationState.Terminated)
	assert.Equal(t, int32(3), s.LastTerminationState.Terminated.ExitCode)
	assert.Equal(t, "first", s.LastTerminationState.Terminated.Message, "FallbackToLogsOnError takes the log's tail")
	require.NotNil(t, s.State.Terminated)
	assert.Equal(t, "Completed", s.State.Terminated.Reason)
	assert.Equal(t, "first\n", n.readLog(t, of, "main", 0))
	assert.Equal(t, "second\n", n.readLog(t, of, "main", 1))

	got = waitPod(t, n.cs, ns, "always", 60*time.Second, "restarted twice", func(p *corev1.Pod) bool {
		s := containerStatusOf(p, "main")
		return s != nil && s.RestartCount >= 2
	})
	assert.Equal(t, corev1.PodRunning, got.Status.Phase)

	got = waitPod(t, n.cs, ns, "never", 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	s = containerStatusOf(got, "main")
	assert.Equal(t, int32(0), s.RestartCount)
	require.NotNil(t, s.State.Terminated)
	assert.Equal(t, int32(2), s.State.Terminated.ExitCode)
	assert.Equal(t, "Error", s.State.Terminated.Reason)
}
