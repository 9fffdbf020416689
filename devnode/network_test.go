package devnode

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestBridgeAndVethNames(t *testing.T) {
	assert.Equal(t, "ejbr0af4000010", bridgeName(netip.MustParsePrefix("10.244.0.0/16")))
	assert.Equal(t, "ejv0af40203", vethName("ejv", netip.MustParseAddr("10.244.2.3")))
	assert.LessOrEqual(t, len(bridgeName(netip.MustParsePrefix("192.168.100.0/29"))), 15, "Linux interface names have at most 15 characters")
}

// Each pod has its own network namespace: lo and eth0 only, its pod IP on eth0, port 9000 on
// 0.0.0.0 in two pods at once; one pod reaches the other at its IP, the API server through
// KUBERNETES_SERVICE_HOST/PORT, and an exec probe runs in the pod's namespace. Once the pod is
// gone, so are its veth and the process that held its namespace.
func TestPodNetworkNamespace(t *testing.T) {
	n := startNode(t, Options{})
	ns := newNamespace(t, n.cs)
	server := createPod(t, n.cs, ns, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "server"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: hostImage,
			Command: []string{"/usr/bin/python3", "-m", "http.server", "--bind", "0.0.0.0", "9000"},
			Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: 9000}},
			// Runs inside the pod's namespace: the server's socket is not on the host's.
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{
				"/bin/sh", "-c", "grep -q ' 00000000:2328 00000000:0000 0A ' /proc/net/tcp"}}}, PeriodSeconds: 1},
		}}},
	})
	server = waitPod(t, n.cs, ns, server.Name, 60*time.Second, "ready", podReady)
	serverIP := netip.MustParseAddr(server.Status.PodIP)
	require.True(t, DefaultPodNetwork.Contains(serverIP), "pod IP %s", serverIP)
	hostIf := filepath.Join("/sys/class/net", vethName("ejv", serverIP))
	_, err := os.Stat(hostIf)
	require.NoError(t, err, "the pod's veth is on the host")

	script := `
import json, os, socket, ssl, subprocess, sys, urllib.request
ifaces = sorted(l.split(":")[0].strip() for l in open("/proc/net/dev").readlines()[2:])
print("interfaces", " ".join(ifaces))
out = subprocess.run(["ip", "-4", "-o", "addr", "show", "eth0"], capture_output=True, text=True).stdout.split()
print("eth0", out[3].split("/")[0])
s = socket.socket(); s.bind(("0.0.0.0", 9000)); s.listen(); print("bound 0.0.0.0:9000")
print("server", urllib.request.urlopen("http://" + sys.argv[1] + ":9000/", timeout=10).status)
api = (os.environ["KUBERNETES_SERVICE_HOST"], int(os.environ["KUBERNETES_SERVICE_PORT"]))
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with socket.create_connection(api, timeout=10) as c, ctx.wrap_socket(c) as t:
    t.sendall(b"GET /version HTTP/1.0\r\nHost: x\r\n\r\n")
    print("api", t.recv(64).split()[1].decode())
`
	client := createPod(t, n.cs, ns, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "client"},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{
			Name: "main", Image: hostImage, Command: []string{"/usr/bin/python3", "-c", script, serverIP.String()},
		}}},
	})
	done := waitPod(t, n.cs, ns, client.Name, 60*time.Second, "finished", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
	})
	log := n.readLog(t, client, "main", 0)
	require.Equal(t, corev1.PodSucceeded, done.Status.Phase, "the client failed:\n%s", log)
	assert.Contains(t, log, "interfaces eth0 lo\n", "only the pod's own interfaces")
	assert.Contains(t, log, "eth0 "+done.Status.PodIP+"\n", "eth0 has the pod IP")
	assert.Contains(t, log, "bound 0.0.0.0:9000\n", "the server's port is free in another pod")
	assert.Contains(t, log, "server 200\n", "one pod reaches another at its IP")
	assert.Regexp(t, `api (200|401|403)\n`, log, "the API server answers, over TLS, at the address in-cluster clients use")

	require.NoError(t, n.cs.CoreV1().Pods(ns).Delete(context.Background(), server.Name, metav1.DeleteOptions{GracePeriodSeconds: ptrTo[int64](1)}))
	waitPodGone(t, n.cs, ns, server.Name, 60*time.Second)
	require.True(t, assertEventually(10*time.Second, func() bool {
		_, err := os.Stat(hostIf)
		return os.IsNotExist(err)
	}), "the deleted pod's veth %s is still on the host", hostIf)
}
