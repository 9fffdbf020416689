package devnode

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
)

// devnode runs with nothing but ClusterRole: a pod with a Secret volume, a
// PersistentVolumeClaim volume and a ConfigMap variable runs, turns Ready, is reached through its Service, and is deleted gracefully.
func TestRunsWithLeastPrivilege(t *testing.T) {
	env := controlPlane(t)
	admin := clientset(t)
	user := "devnode-" + strings.ToLower(rand.String(5))
	cfg, err := env.Grant(context.Background(), rest.ImpersonationConfig{UserName: user}, ClusterRole(user))
	require.NoError(t, err)

	n := startNodeWithConfig(t, cfg, Options{NodeName: user})
	ns := newNamespace(t, admin)
	_, err = admin.CoreV1().Secrets(ns).Create(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Data: map[string][]byte{"page": []byte("secret page")}}, metav1.CreateOptions{})
	require.NoError(t, err)
	_, err = admin.CoreV1().ConfigMaps(ns).Create(context.Background(), &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}, Data: map[string]string{"port": "8080"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	bindHostPath(t, admin, createClaim(t, admin, ns, "state"), filepath.Join(t.TempDir(), "state"))
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			TerminationGracePeriodSeconds: ptrTo[int64](1),
			Volumes: []corev1.Volume{
				{Name: "s", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}},
				{Name: "state", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "state"}}},
			},
			Containers: []corev1.Container{{
				Name: "web", Image: hostImage,
				Command: []string{"python3", "-m", "http.server", "--bind", "$(POD_IP)", "--directory", "/srv", "$(PORT)"},
				Env: []corev1.EnvVar{podIPEnv(), {Name: "PORT", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: "c"}, Key: "port"}}}},
				VolumeMounts:   []corev1.VolumeMount{{Name: "s", MountPath: "/srv"}, {Name: "state", MountPath: "/state"}},
				ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/page", Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1},
			}},
		},
	}
	createPod(t, admin, ns, p)
	_, err = admin.CoreV1().Services(ns).Create(context.Background(), &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	waitPod(t, admin, ns, "web", 60*time.Second, "Ready", podReady)
	var addr string
	require.True(t, assertEventually(30*time.Second, func() bool {
		var ok bool
		addr, ok = n.agent.ServiceAddress(ns, "web", 80)
		return ok
	}))
	resp, err := http.Get("http://" + addr + "/page")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, "secret page", string(body))

	require.NoError(t, admin.CoreV1().Pods(ns).Delete(context.Background(), "web", metav1.DeleteOptions{}))
	waitPodGone(t, admin, ns, "web", 60*time.Second)
	lease, err := admin.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(context.Background(), user, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, user, *lease.Spec.HolderIdentity)
	data, _ := readFile(n.log)
	assert.NotContains(t, data, "forbidden", "devnode hit a permission it lacks")
}
