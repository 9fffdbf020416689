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

// A Deployment of two tiny HTTP servers with an httpGet readiness probe: the controller
// manager makes the pods, the scheduler binds them to the devnode, and both turn Ready with
// their own loopback IPs, each answering on its own.
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
					Command: []string{"/usr/bin/python3", "-m", "http.server", "--bind", "$(POD_IP)", "8000"},
					Env:     []corev1.EnvVar{podIPEnv()},
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
		assert.True(t, netip.MustParsePrefix("127.0.0.0/24").Contains(ip), "pod IP %s outside the pod network", ip)
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
