package devnode

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// A Deployment of two tiny HTTP servers with an httpGet readiness probe: the controller
// manager makes the pods, the scheduler binds them to the devnode, and both turn Ready with
// their own IPs, each answering on its own. Both bind 0.0.0.0:8000, as servers in pods do:
// each pod has its own network namespace.
func TestDeploymentReplicasGetOwnIPs(t *testing.T) {
	n := startNode(t, Options{})
	ns := newNamespace(t, n.cs)
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name:    "web",
					Image:   hostImage,
					Command: []string{"/usr/bin/python3", "-m", "http.server", "--bind", "0.0.0.0", "8000"},
					Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 8000}},
					ReadinessProbe: &corev1.Probe{
						ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromString("http")}},
						PeriodSeconds: 1,
					},
				}}},
			},
		},
	}
	_, err := n.cs.AppsV1().Deployments(ns).Create(context.Background(), dep, metav1.CreateOptions{})
	require.NoError(t, err)

	var pods []corev1.Pod
	ok := assertEventually(90*time.Second, func() bool {
		list, err := n.cs.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil || len(list.Items) != 2 {
			return false
		}
		for _, p := range list.Items {
			if !podReady(&p) {
				return false
			}
		}
		pods = list.Items
		return true
	})
	require.True(t, ok, "the two replicas never turned Ready")
	ips := map[string]bool{}
	for _, p := range pods {
		assert.Equal(t, n.name, p.Spec.NodeName)
		assert.Equal(t, corev1.PodRunning, p.Status.Phase)
		ip, err := netip.ParseAddr(p.Status.PodIP)
		require.NoError(t, err)
		assert.True(t, DefaultPodNetwork.Contains(ip), "pod IP %s outside the pod network", ip)
		require.Len(t, p.Status.PodIPs, 1)
		ips[p.Status.PodIP] = true
		resp, err := http.Get("http://" + p.Status.PodIP + ":8000/")
		require.NoError(t, err, "pod %s does not answer on its IP", p.Name)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Contains(t, string(body), "Directory listing")
	}
	assert.Len(t, ips, 2, "the replicas share an IP")
	require.Eventually(t, func() bool {
		d, err := n.cs.AppsV1().Deployments(ns).Get(context.Background(), "web", metav1.GetOptions{})
		return err == nil && d.Status.ReadyReplicas == 2
	}, 30*time.Second, 100*time.Millisecond, "the Deployment never counted two ready replicas")
}

// An init container writes into an emptyDir; the main container, running as a non-root user,
// sees that file, a Secret mounted with mode 0400, and downward API variables.
func TestInitContainerVolumesAndEnv(t *testing.T) {
	n := startNode(t, Options{})
	ns := newNamespace(t, n.cs)
	_, err := n.cs.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "creds"},
		Data:       map[string][]byte{"token": []byte("s3cr3t-value")},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	fieldEnv := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "reader", Labels: map[string]string{"team": "vision"}},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			SecurityContext: &corev1.PodSecurityContext{
				RunAsUser: ptrTo[int64](1000), RunAsGroup: ptrTo[int64](1000), FSGroup: ptrTo[int64](1000), RunAsNonRoot: ptrTo(true),
			},
			Volumes: []corev1.Volume{
				{Name: "work", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "creds", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "creds", DefaultMode: ptrTo[int32](0o400)}}},
			},
			InitContainers: []corev1.Container{{
				Name: "prepare", Image: hostImage,
				Command:      []string{"/bin/sh", "-c", "echo written-by-init > /work/init.txt"},
				VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}},
			}},
			Containers: []corev1.Container{{
				Name: "main", Image: hostImage,
				Command: []string{"/bin/sh", "-c", `cat /work/init.txt; echo "token=$(cat /var/run/creds/token)"; ` +
					`echo "pod=$MY_POD_NAME ns=$MY_NAMESPACE ip=$MY_POD_IP team=$MY_TEAM uid=$(id -u) host=$(hostname)"; ` +
					`echo "greeting=$GREETING"; ls -ln /var/run/creds/token; touch /var/run/creds/x 2>/dev/null || echo secret-volume-read-only`},
				Env: []corev1.EnvVar{
					fieldEnv("MY_POD_NAME", "metadata.name"), fieldEnv("MY_NAMESPACE", "metadata.namespace"),
					fieldEnv("MY_POD_IP", "status.podIP"), fieldEnv("MY_TEAM", "metadata.labels['team']"),
					{Name: "GREETING", Value: "hello from $(MY_POD_NAME)"},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "work", MountPath: "/work"}, {Name: "creds", MountPath: "/var/run/creds", ReadOnly: true}},
			}},
		},
	}
	created := createPod(t, n.cs, ns, p)
	done := waitPod(t, n.cs, ns, "reader", 60*time.Second, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	log := n.readLog(t, created, "main", 0)
	assert.Contains(t, log, "written-by-init")
	assert.Contains(t, log, "token=s3cr3t-value")
	assert.Contains(t, log, "pod=reader ns="+ns+" ip="+done.Status.PodIP+" team=vision uid=1000 host=reader")
	assert.Contains(t, log, "greeting=hello from reader")
	assert.Contains(t, log, "-r--r----- 1 1000 1000", "the secret file is the user's, with the fsGroup's read bit")
	assert.Contains(t, log, "secret-volume-read-only")
	init := containerStatusOf(done, "prepare")
	require.NotNil(t, init.State.Terminated)
	assert.Equal(t, int32(0), init.State.Terminated.ExitCode)
	main := containerStatusOf(done, "main")
	require.NotNil(t, main.State.Terminated)
	assert.Equal(t, "Completed", main.State.Terminated.Reason)
	assert.True(t, conditionTrue(done.Status.Conditions, corev1.PodInitialized))
	_, err = os.Stat("/work/init.txt")
	assert.True(t, os.IsNotExist(err), "the emptyDir leaked onto the host's /work")
}

// A container whose command does not exist fails with a clear reason instead of staying
// Pending: the pod fails under restartPolicy Never, and waits (retrying) under Always.
func TestMissingCommandIsReported(t *testing.T) {
	n := startNode(t, Options{})
	ns := newNamespace(t, n.cs)
	never := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "never"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
			Name: "main", Image: hostImage, Command: []string{"/usr/bin/no-such-binary-here", "--flag"},
		}}},
	}
	always := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "always"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways, Containers: []corev1.Container{{
			Name: "main", Image: hostImage, Command: []string{"no-such-command-anywhere"},
		}}},
	}
	noCommand := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "no-command"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
			Name: "main", Image: "docker.io/library/python:3.12", Args: []string{"-c", "print(1)"},
		}}},
	}
	for _, p := range []*corev1.Pod{never, always, noCommand} {
		createPod(t, n.cs, ns, p)
	}
	waiting := func(p *corev1.Pod) *corev1.ContainerStateWaiting {
		if s := containerStatusOf(p, "main"); s != nil {
			return s.State.Waiting
		}
		return nil
	}
	got := waitPod(t, n.cs, ns, "never", 60*time.Second, "Failed with CreateContainerError", func(p *corev1.Pod) bool {
		w := waiting(p)
		return p.Status.Phase == corev1.PodFailed && w != nil && w.Reason == "CreateContainerError"
	})
	assert.Contains(t, waiting(got).Message, `"/usr/bin/no-such-binary-here": no such file or directory`)

	got = waitPod(t, n.cs, ns, "always", 60*time.Second, "waiting with CreateContainerError", func(p *corev1.Pod) bool {
		w := waiting(p)
		return w != nil && w.Reason == "CreateContainerError"
	})
	assert.Contains(t, waiting(got).Message, `"no-such-command-anywhere": executable file not found in $PATH (`+StandardPath+`)`)
	assert.Equal(t, corev1.PodPending, got.Status.Phase)
	assert.False(t, podReady(got))

	got = waitPod(t, n.cs, ns, "no-command", 60*time.Second, "Failed with CreateContainerError", func(p *corev1.Pod) bool {
		w := waiting(p)
		return p.Status.Phase == corev1.PodFailed && w != nil && w.Reason == "CreateContainerError"
	})
	assert.Contains(t, waiting(got).Message, "has no command")
	assert.Contains(t, waiting(got).Message, "set command")
}

// Deleting a pod whose process ignores SIGTERM: the process gets SIGTERM first, survives it,
// and is killed once the grace period is over, with the child it started in a session of its
// own; then the pod object goes away.
func TestGracefulDeleteKillsAfterGracePeriod(t *testing.T) {
	n := startNode(t, Options{})
	ns := newNamespace(t, n.cs)
	const grace = 3
	script := `
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, lambda *a: print("TERM ignored", flush=True))
subprocess.Popen(["sleep", "1000"], start_new_session=True)
print("started", flush=True)
while True:
    time.sleep(0.2)
`
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "stubborn"},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptrTo[int64](grace),
			Containers:                    []corev1.Container{{Name: "main", Image: hostImage, Command: []string{"python3", "-c", script}}},
		},
	}
	created := createPod(t, n.cs, ns, p)
	waitPod(t, n.cs, ns, "stubborn", 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	n.waitLog(t, created, "main", 0, "started")
	var pids []int
	require.True(t, assertEventually(10*time.Second, func() bool {
		pids = nil
		for _, ps := range ContainerProcesses(n.root) {
			pids = append(pids, ps...)
		}
		return len(pids) >= 2
	}), "expected python and its escaped child in the container")

	start := time.Now()
	require.NoError(t, n.cs.CoreV1().Pods(ns).Delete(context.Background(), "stubborn", metav1.DeleteOptions{}))
	n.waitLog(t, created, "main", 0, "TERM ignored")
	waitPodGone(t, n.cs, ns, "stubborn", 60*time.Second)
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, grace*time.Second, "the pod was gone before its grace period ended")
	for _, pid := range pids {
		assert.False(t, processAlive(pid), "process %d outlived its pod", pid)
	}
	assert.Empty(t, ContainerProcesses(n.root))
	_, err := os.Stat(PodDir(n.root, ns, "stubborn", created.UID))
	assert.True(t, os.IsNotExist(err), "the pod directory outlived the pod")
}
