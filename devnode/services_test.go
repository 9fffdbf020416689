package devnode

import (
	"context"
	"io"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestHostsFile(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "nb-0", Namespace: "team-a"},
		Spec: corev1.PodSpec{
			Subdomain:   "nb",
			HostAliases: []corev1.HostAlias{{IP: "127.0.0.9", Hostnames: []string{"db", "db.local"}}},
		},
	}
	services := []ServiceRecord{
		{Namespace: "team-a", Name: "gateway", IP: "127.0.1.2"},
		{Namespace: "other", Name: "api", IP: "127.0.1.3"},
	}
	got := string(hostsFile(pod, netip.MustParseAddr("127.0.0.5"), services))
	want := "# Kubernetes-managed hosts file (devnode).\n" +
		"127.0.0.1\tlocalhost\n" +
		"::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"127.0.0.5\tnb-0.nb.team-a.svc.cluster.local\tnb-0\n" +
		"127.0.0.9\tdb db.local\n" +
		"# Services (proxied by devnode)\n" +
		"127.0.1.2\tgateway.team-a.svc.cluster.local gateway.team-a.svc gateway.team-a gateway\n" +
		"127.0.1.3\tapi.other.svc.cluster.local api.other.svc api.other\n"
	assert.Equal(t, want, got)
}

// A pod reaches another pod through its Service by name (short and fully qualified), and a
// host process reaches the same Service through the address devnode publishes.
func TestServiceByName(t *testing.T) {
	n := startNode(t, Options{})
	ns := newNamespace(t, n.cs)
	labels := map[string]string{"app": "echo"}
	_, err := n.cs.AppsV1().Deployments(ns).Create(context.Background(), &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptrTo[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "web", Image: hostImage,
					Command:        []string{"/bin/sh", "-c", `mkdir -p /srv && echo "hello from $(hostname)" > /srv/index.html && cd /srv && exec python3 -m http.server --bind "$POD_IP" 8080`},
					Env:            []corev1.EnvVar{podIPEnv()},
					Ports:          []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
				}}},
			},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = n.cs.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "echo"},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "web", Port: 80, TargetPort: intstr.FromString("http")}},
		},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	script := `
import time, urllib.request
deadline = time.time() + 60
for url in ["http://echo/", "http://echo.` + ns + `.svc.cluster.local/"]:
    while True:
        try:
            print(url, urllib.request.urlopen(url, timeout=5).read().decode().strip(), flush=True)
            break
        except Exception as e:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
`
	client := createPod(t, n.cs, ns, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
			Name: "main", Image: hostImage, Command: []string{"python3", "-c", script},
		}}},
	})
	done := waitPod(t, n.cs, ns, "client", 90*time.Second, "finished", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	log := n.readLog(t, client, "main", 0)
	require.Equal(t, corev1.PodSucceeded, done.Status.Phase, "the client failed:\n%s", log)
	assert.Regexp(t, `http://echo/ hello from echo-[a-z0-9-]+\n`, log)
	assert.Regexp(t, `http://echo\.`+ns+`\.svc\.cluster\.local/ hello from echo-[a-z0-9-]+\n`, log)

	addr, ok := n.agent.ServiceAddress(ns, "echo", 80)
	require.True(t, ok)
	fromFile, err := LookupService(n.root, ns, "echo", 80)
	require.NoError(t, err)
	assert.Equal(t, addr, fromFile)
	resp, err := http.Get("http://" + addr + "/")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Contains(t, string(body), "hello from echo-")

	_, err = LookupService(n.root, ns, "missing", 80)
	assert.ErrorContains(t, err, "not (yet) proxied")
	require.NoError(t, n.cs.CoreV1().Services(ns).Delete(context.Background(), "echo", metav1.DeleteOptions{}))
	require.True(t, assertEventually(30*time.Second, func() bool {
		_, ok := n.agent.ServiceAddress(ns, "echo", 80)
		return !ok
	}), "the deleted Service is still proxied")
}
