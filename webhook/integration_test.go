package webhook_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
	"github.com/elastic-jupyter/elastic-jupyter/webhook"
)

const systemNS = "elastic-jupyter-system"

var env *testenv.Env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

// run starts the control plane with the webhook configurations of config/webhook pointed at an
// in-process webhook, plus kube-scheduler and kube-controller-manager for the scheduling test.
func run(m *testing.M) int {
	var err error
	env, err = testenv.Start(testenv.Options{
		Scheduler: true, ControllerManager: true,
		Webhooks: envtest.WebhookInstallOptions{Paths: []string{filepath.Join(testenv.RepoRoot(), "config", "webhook", "manifests.yaml")}},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	wh := env.Envtest.WebhookInstallOptions
	opts := webhook.Options{
		Host: wh.LocalServingHost, Port: wh.LocalServingPort, CertDir: wh.LocalServingCertDir,
		MetricsAddr: "0", ProbeAddr: "0", PolicyNamespace: systemNS,
		Mutate: webhook.MutateOptions{LauncherImage: "example.com/elastic-jupyter:test"},
	}
	mgr, err := webhook.NewManager(env.Config, opts)
	if err == nil {
		err = webhook.Register(mgr, opts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() { cancel(); <-done }()
	addr := net.JoinHostPort(wh.LocalServingHost, strconv.Itoa(wh.LocalServingPort))
	if err := waitTLS(addr, time.Minute); err != nil {
		fmt.Fprintln(os.Stderr, "the webhook did not start:", err)
		return 1
	}
	c := env.Client
	for _, ns := range []string{systemNS, "team-a", "team-mig"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := c.Create(ctx, policyConfigMap(1)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func waitTLS(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // only checks that it serves
		if err == nil {
			return conn.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func policyConfigMap(max int) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: webhook.DefaultPolicyConfigMap, Namespace: systemNS},
		Data: map[string]string{webhook.PolicyKey: fmt.Sprintf(`teams:
  - name: team-a
    namespaces: [team-a]
    gpu: {resourceName: nvidia.com/gpu, maxPerKernel: %d}
    tolerations: [{key: dedicated, operator: Equal, value: team-a, effect: NoSchedule}]
  - name: team-mig
    namespaces: [team-mig]
    gpu: {resourceName: nvidia.com/mig-1g.10gb, maxPerKernel: 1}
`, max)},
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func gpuKernelSpec(t *testing.T, ns, name string, gpus int32) {
	t.Helper()
	ks := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	ks.Spec.Image = "python:3"
	ks.Spec.Command = []string{"python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"}
	ks.Spec.Resources = &ejv1.KernelResources{GPUs: ptr.To(gpus)}
	require.NoError(t, env.Client.Create(ctx(t), ks))
}

// kernelPodFor is a kernel pod as the controller creates it.
func kernelPodFor(ns, name, spec string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels: map[string]string{ejv1.LabelComponent: ejv1.ComponentKernel, ejv1.LabelKernelID: name},
			Annotations: map[string]string{
				ejv1.AnnotationConnectionSecret: name + "-connection",
				ejv1.AnnotationKernelSpec:       ns + "/" + spec,
			},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "kernel", Image: "python:3",
				Command: []string{"python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"}}},
		},
	}
}

func TestKernelPodIsMutatedOnTheWayIn(t *testing.T) {
	gpuKernelSpec(t, "team-a", "gpu-one", 1)
	pod := kernelPodFor("team-a", "k-mutated", "gpu-one")
	require.NoError(t, env.Client.Create(ctx(t), pod))
	stored := &corev1.Pod{}
	require.NoError(t, env.Client.Get(ctx(t), client.ObjectKeyFromObject(pod), stored))

	require.Len(t, stored.Spec.InitContainers, 1)
	assert.Equal(t, webhook.InitContainerName, stored.Spec.InitContainers[0].Name)
	assert.Equal(t, "example.com/elastic-jupyter:test", stored.Spec.InitContainers[0].Image)
	c := stored.Spec.Containers[0]
	assert.Equal(t, webhook.LauncherBinary, c.Command[0])
	assert.Equal(t, "python3", c.Command[len(c.Command)-5], "the original argv follows the launcher's --")
	assert.True(t, c.Resources.Limits["nvidia.com/gpu"].Equal(resource.MustParse("1")))
	assert.Contains(t, stored.Spec.Tolerations, webhook.DefaultGPUToleration)
	assert.Contains(t, stored.Spec.Tolerations, corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "team-a", Effect: corev1.TaintEffectNoSchedule})
	assert.Equal(t, "true", stored.Annotations[ejv1.AnnotationLauncherInjected])
}

func TestOrdinaryPodIsStoredUnchanged(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "ordinary", Namespace: "team-a", Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx", Command: []string{"nginx"},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8")}}}}},
	}
	require.NoError(t, env.Client.Create(ctx(t), pod))
	stored := &corev1.Pod{}
	require.NoError(t, env.Client.Get(ctx(t), client.ObjectKeyFromObject(pod), stored))
	assert.Empty(t, stored.Spec.InitContainers)
	assert.Equal(t, []string{"nginx"}, stored.Spec.Containers[0].Command)
	for _, tol := range stored.Spec.Tolerations {
		assert.NotEqual(t, "nvidia.com/gpu", tol.Key, "no GPU toleration added")
	}
	assert.NotContains(t, stored.Annotations, ejv1.AnnotationLauncherInjected)
}

func TestInvalidKernelSpecIsRefused(t *testing.T) {
	ks := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: "no-file", Namespace: "team-a"}}
	ks.Spec.Image = "python:3"
	ks.Spec.Command = []string{"python3", "-m", "ipykernel_launcher"}
	err := env.Client.Create(ctx(t), ks)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.command")
	assert.Contains(t, err.Error(), "{connection_file}")

	over := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: "too-many", Namespace: "team-a"}}
	over.Spec.Command = []string{"python3", "-f", "{connection_file}"}
	over.Spec.Resources = &ejv1.KernelResources{GPUs: ptr.To[int32](2)}
	err = env.Client.Create(ctx(t), over)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.resources.gpus")
	assert.Contains(t, err.Error(), "team team-a allows at most 1 nvidia.com/gpu per kernel")
}

func TestOverLimitKernelPodIsRefused(t *testing.T) {
	pod := kernelPodFor("team-a", "k-greedy", "absent")
	pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("3")}
	err := env.Client.Create(ctx(t), pod)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "team team-a allows at most 1 nvidia.com/gpu per kernel")
	assert.Contains(t, err.Error(), "spec.containers[0].resources.limits[nvidia.com/gpu]")

	mig := kernelPodFor("team-mig", "k-whole", "absent")
	mig.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
	err = env.Client.Create(ctx(t), mig)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "team team-mig's kernels use nvidia.com/mig-1g.10gb")
}

func TestPolicyEditsApplyToTheNextPod(t *testing.T) {
	// A pod whose template asks for 2 GPUs itself (its kernelspec says nothing).
	pod := kernelPodFor("team-a", "k-before", "absent")
	pod.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("2")}
	require.Error(t, env.Client.Create(ctx(t), pod), "2 GPUs are over the maximum of 1")

	cm := &corev1.ConfigMap{}
	require.NoError(t, env.Client.Get(ctx(t), client.ObjectKey{Namespace: systemNS, Name: webhook.DefaultPolicyConfigMap}, cm))
	cm.Data = policyConfigMap(2).Data
	require.NoError(t, env.Client.Update(ctx(t), cm))
	t.Cleanup(func() {
		cm.Data = policyConfigMap(1).Data
		_ = env.Client.Update(context.Background(), cm)
	})
	require.Eventually(t, func() bool {
		p := kernelPodFor("team-a", "k-after", "absent")
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("2")}
		return env.Client.Create(context.Background(), p) == nil
	}, time.Minute, 200*time.Millisecond, "the raised maximum applies without a restart")
}

func TestCertificateRotationIsPickedUp(t *testing.T) {
	wh := env.Envtest.WebhookInstallOptions
	addr := net.JoinHostPort(wh.LocalServingHost, strconv.Itoa(wh.LocalServingPort))
	before := servedSerial(t, addr)

	// Issue a new serving certificate from a fresh CA and write it over the old files.
	certPEM, keyPEM := newServingCert(t, wh.LocalServingHost)
	dir := wh.LocalServingCertDir
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.key.new"), keyPEM, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.crt.new"), certPEM, 0o600))
	require.NoError(t, os.Rename(filepath.Join(dir, "tls.key.new"), filepath.Join(dir, "tls.key")))
	require.NoError(t, os.Rename(filepath.Join(dir, "tls.crt.new"), filepath.Join(dir, "tls.crt")))
	require.Eventually(t, func() bool { return servedSerial(t, addr) != before }, time.Minute, 200*time.Millisecond,
		"the webhook serves the rotated certificate without a restart")
}

func servedSerial(t *testing.T, addr string) string {
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reads the served certificate
	require.NoError(t, err)
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
}
