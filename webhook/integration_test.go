package webhook_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/webhook"
)

var ipykernel = []string{"python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"}

// createKernelSpec creates a kernelspec with gpus GPUs (nil: it does not say) and removes it
// when the test ends.
func createKernelSpec(t *testing.T, ns, name string, gpus *int32, mode ejv1.InterruptMode) {
	t.Helper()
	ks := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	ks.Spec.Image = "python:3"
	ks.Spec.Command = ipykernel
	ks.Spec.InterruptMode = mode
	if gpus != nil {
		ks.Spec.Resources = &ejv1.KernelResources{GPUs: gpus}
	}
	require.NoError(t, env.Client.Create(ctx(t), ks))
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ks) })
}

// kernelPodFor is a kernel pod as the controller creates it.
func kernelPodFor(ns, name, spec string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels: map[string]string{ejv1.LabelComponent: ejv1.ComponentKernel, ejv1.LabelKernelID: name, ejv1.LabelKernelSpec: spec},
			Annotations: map[string]string{
				ejv1.AnnotationConnectionSecret: ejv1.ConnectionSecretName(name),
				ejv1.AnnotationKernelSpec:       ns + "/" + spec,
			},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: ejv1.KernelContainerName, Image: "python:3", Command: ipykernel}},
		},
	}
}

// createPod creates a pod and deletes it when the test ends.
func createPod(t *testing.T, c client.Client, pod *corev1.Pod) error {
	t.Helper()
	err := c.Create(ctx(t), pod)
	if err == nil {
		t.Cleanup(func() { _ = env.Client.Delete(context.Background(), pod, client.GracePeriodSeconds(0)) })
	}
	return err
}

func stored(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	out := &corev1.Pod{}
	require.NoError(t, env.Client.Get(ctx(t), client.ObjectKeyFromObject(pod), out))
	return out
}

func requireNotStored(t *testing.T, obj client.Object) {
	t.Helper()
	err := env.Client.Get(ctx(t), client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
	require.True(t, apierrors.IsNotFound(err), "nothing half-created: %v", err)
}

func TestKernelPodIsMutatedOnTheWayIn(t *testing.T) {
	createKernelSpec(t, "team-a", "gpu-one", ptr.To[int32](1), ejv1.InterruptModeMessage)
	pod := kernelPodFor("team-a", "k-mutated", "gpu-one")
	require.NoError(t, createPod(t, env.Client, pod))
	got := stored(t, pod)

	require.Len(t, got.Spec.InitContainers, 1)
	ic := got.Spec.InitContainers[0]
	assert.Equal(t, webhook.InitContainerName, ic.Name)
	assert.Equal(t, testImage, ic.Image)
	assert.Equal(t, []string{"/usr/local/bin/kernel-launcher", "install", "/opt/elastic-jupyter/bin"}, ic.Command)
	c := got.Spec.Containers[0]
	assert.Equal(t, append([]string{"/opt/elastic-jupyter/bin/kernel-launcher", "run",
		"--connection-file", "/var/run/elastic-jupyter/connection/connection.json", "--runtime-dir", "/opt/elastic-jupyter/run",
		"--ip", "$(POD_IP)", "--control-port", "8778", "--interrupt-mode", "message", "--"}, ipykernel...), c.Command)
	assert.True(t, c.Resources.Limits["nvidia.com/gpu"].Equal(resource.MustParse("1")))
	assert.True(t, c.Resources.Requests["nvidia.com/gpu"].Equal(resource.MustParse("1")))
	assert.Contains(t, got.Spec.Tolerations, webhook.DefaultGPUToleration)
	assert.Contains(t, got.Spec.Tolerations, corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "team-a", Effect: corev1.TaintEffectNoSchedule})
	assert.Equal(t, "k-mutated-connection", got.Spec.Volumes[len(got.Spec.Volumes)-1].Secret.SecretName)
	assert.Equal(t, "/readyz", c.ReadinessProbe.HTTPGet.Path)
	assert.True(t, *got.Spec.SecurityContext.RunAsNonRoot)
	assert.Equal(t, "true", got.Annotations[ejv1.AnnotationLauncherInjected])
}

func TestMIGKernelPodGetsTheTeamsProfile(t *testing.T) {
	createKernelSpec(t, "team-mig", "mig", ptr.To[int32](1), "")
	pod := kernelPodFor("team-mig", "k-mig", "mig")
	require.NoError(t, createPod(t, env.Client, pod))
	c := stored(t, pod).Spec.Containers[0]
	assert.True(t, c.Resources.Limits["nvidia.com/mig-1g.10gb"].Equal(resource.MustParse("1")))
	assert.NotContains(t, c.Resources.Limits, corev1.ResourceName("nvidia.com/gpu"))
}

func TestKernelPodWithoutItsKernelSpecGetsTheLauncherAndAWarning(t *testing.T) {
	c, w := warningClient(t)
	pod := kernelPodFor("team-a", "k-orphan", "gone")
	require.NoError(t, createPod(t, c, pod))
	got := stored(t, pod)
	assert.Equal(t, webhook.LauncherBinary, got.Spec.Containers[0].Command[0])
	assert.Empty(t, got.Spec.Containers[0].Resources.Limits, "no GPU without a kernelspec that asks for one")
	for _, tol := range got.Spec.Tolerations {
		assert.NotContains(t, []string{"nvidia.com/gpu", "dedicated"}, tol.Key, "no GPU placement without a GPU")
	}
	assert.Contains(t, w.String(), "JupyterKernelSpec team-a/gone not found")
}

func TestOrdinaryPodIsStoredUnchangedAndNeverSentToTheWebhook(t *testing.T) {
	before := webhookRequests(t, webhook.PathMutateKernelPod) + webhookRequests(t, webhook.PathValidateKernelPod)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "ordinary", Namespace: "team-a", Labels: map[string]string{"app": "web"},
			Annotations: map[string]string{ejv1.AnnotationKernelSpec: "team-a/gpu-one"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx", Command: []string{"nginx"},
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("8")}}}}},
	}
	require.NoError(t, createPod(t, env.Client, pod), "8 GPUs are over team-a's maximum, but this is no kernel pod")
	got := stored(t, pod)
	assert.Empty(t, got.Spec.InitContainers)
	assert.Len(t, got.Spec.Volumes, len(pod.Spec.Volumes))
	c := got.Spec.Containers[0]
	assert.Equal(t, []string{"nginx"}, c.Command)
	assert.Empty(t, c.Env)
	assert.Empty(t, c.Ports)
	assert.Nil(t, c.ReadinessProbe)
	assert.Nil(t, c.SecurityContext)
	assert.Equal(t, pod.Spec.Containers[0].Resources.Limits, c.Resources.Limits)
	for _, tol := range got.Spec.Tolerations {
		assert.NotEqual(t, "nvidia.com/gpu", tol.Key, "no GPU toleration added")
	}
	assert.NotContains(t, got.Annotations, ejv1.AnnotationLauncherInjected)
	after := webhookRequests(t, webhook.PathMutateKernelPod) + webhookRequests(t, webhook.PathValidateKernelPod)
	assert.Equal(t, before, after, "the object selector keeps ordinary pods away from the webhook")
}

func TestInvalidKernelSpecIsRefused(t *testing.T) {
	cases := []struct {
		name  string
		mod   func(*ejv1.JupyterKernelSpec)
		wants []string
	}{
		{"no-file", func(k *ejv1.JupyterKernelSpec) { k.Spec.Command = []string{"python3", "-m", "ipykernel_launcher"} },
			[]string{"spec.command", "must pass the connection file as {connection_file}"}},
		{"enterprise-gateway", func(k *ejv1.JupyterKernelSpec) {
			k.Spec.Command = []string{"python", "launch_kubernetes.py", "--RemoteProcessProxy.response-address", "{response_address}"}
		}, []string{"spec.command[3]", "Enterprise Gateway", "write the kernel's argv with {connection_file}"}},
		{"too-many", func(k *ejv1.JupyterKernelSpec) { k.Spec.Resources = &ejv1.KernelResources{GPUs: ptr.To[int32](2)} },
			[]string{"spec.resources.gpus", "team team-a allows at most 1 nvidia.com/gpu per kernel"}},
		{"other-gpu", func(k *ejv1.JupyterKernelSpec) {
			k.Spec.Resources = &ejv1.KernelResources{GPUResource: "nvidia.com/mig-1g.10gb"}
		},
			[]string{"spec.resources.gpuResource", "team team-a's kernels use nvidia.com/gpu"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ks := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: tc.name, Namespace: "team-a"}}
			ks.Spec.Image = "python:3"
			ks.Spec.Command = ipykernel
			tc.mod(ks)
			err := env.Client.Create(ctx(t), ks)
			require.Error(t, err)
			assert.True(t, apierrors.IsInvalid(err), "refused as Invalid: %v", err)
			for _, w := range tc.wants {
				assert.Contains(t, err.Error(), w)
			}
			requireNotStored(t, ks)
		})
	}
}

func TestOverLimitKernelPodIsRefused(t *testing.T) {
	createKernelSpec(t, "team-a", "gpu-limit", ptr.To[int32](1), "")
	cases := []struct {
		name  string
		pod   *corev1.Pod
		wants []string
	}{
		{"client-asks-too-much", func() *corev1.Pod {
			p := kernelPodFor("team-a", "k-client", "gpu-limit")
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "KERNEL_GPUS", Value: "3"}}
			return p
		}(), []string{"KERNEL_GPUS asks for 3 GPU(s); team team-a allows at most 1 per kernel", "spec.containers[0].resources.limits[nvidia.com/gpu]"}},
		{"template-asks-too-much", func() *corev1.Pod {
			p := kernelPodFor("team-a", "k-template", "gpu-limit")
			p.Spec.InitContainers = []corev1.Container{{Name: "warm", Image: "python:3",
				Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("3")}}}}
			return p
		}(), []string{"spec.initContainers[0].resources.limits[nvidia.com/gpu]", "team team-a allows at most 1 nvidia.com/gpu per kernel"}},
		{"whole-gpu-in-a-mig-team", func() *corev1.Pod {
			p := kernelPodFor("team-mig", "k-whole", "absent")
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}
			return p
		}(), []string{"team team-mig's kernels use nvidia.com/mig-1g.10gb"}},
		{"root", func() *corev1.Pod {
			p := kernelPodFor("team-a", "k-root", "gpu-limit")
			p.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsUser: ptr.To[int64](0)}
			return p
		}(), []string{"spec.securityContext.runAsUser", "never as root"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := createPod(t, env.Client, tc.pod)
			require.Error(t, err)
			for _, w := range tc.wants {
				assert.Contains(t, err.Error(), w)
			}
			requireNotStored(t, tc.pod)
		})
	}
}

func TestOtherKindsAreValidated(t *testing.T) {
	c, w := warningClient(t)
	tmpl := &ejv1.JupyterKernelTemplate{ObjectMeta: metav1.ObjectMeta{Name: "empty", Namespace: "team-a"}}
	tmpl.Spec.Template = &corev1.PodTemplateSpec{}
	err := c.Create(ctx(t), tmpl)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.template.spec.containers")

	gw := &ejv1.JupyterGateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "team-a"}}
	gw.Spec.Kernels = []string{"python3"}
	gw.Spec.DefaultKernel = ptr.To("r")
	err = c.Create(ctx(t), gw)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.defaultKernel")

	nb := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "nb", Namespace: "team-a"}}
	nb.Spec.Auth = &ejv1.JupyterAuth{Mode: ejv1.ModeJupyterAuthEnable, Token: ptr.To("literal-token-value")}
	nb.Spec.Gateway = &corev1.ObjectReference{Name: "nowhere"}
	require.NoError(t, c.Create(ctx(t), nb), "allowed, with warnings")
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), nb) })
	assert.Contains(t, w.String(), "stored in plain text")
	assert.Contains(t, w.String(), "JupyterGateway team-a/nowhere does not exist")
	assert.NotContains(t, w.String(), "literal-token-value")

	k := &ejv1.JupyterKernel{ObjectMeta: metav1.ObjectMeta{Name: "2f1c1a0e-0000-4000-8000-000000000001", Namespace: "team-a"}}
	k.Spec.KernelSpec = &ejv1.ObjectRef{Name: "python3"}
	k.Spec.Env = []corev1.EnvVar{{Name: "KERNEL_GPUS", Value: "4"}}
	err = c.Create(ctx(t), k)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "spec.env[0].value")
	assert.Contains(t, err.Error(), "team team-a allows at most 1 nvidia.com/gpu per kernel")
	requireNotStored(t, k)
}

// setPolicy replaces the team policy and waits until the webhook applies it, as seen through
// probe (a dry-run request that succeeds only under the new policy).
func setPolicy(t *testing.T, data string, probe func() bool) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	require.NoError(t, env.Client.Get(ctx(t), client.ObjectKey{Namespace: systemNS, Name: webhook.DefaultPolicyConfigMap}, cm))
	cm.Data = map[string]string{webhook.PolicyKey: data}
	require.NoError(t, env.Client.Update(ctx(t), cm))
	require.Eventually(t, probe, time.Minute, 100*time.Millisecond, "the edited policy applies without a restart")
}

func TestPolicyEditsApplyToTheNextPod(t *testing.T) {
	t.Cleanup(func() {
		cm := policyConfigMap(1)
		cur := &corev1.ConfigMap{}
		if env.Client.Get(context.Background(), client.ObjectKeyFromObject(cm), cur) == nil {
			cur.Data = cm.Data
			_ = env.Client.Update(context.Background(), cur)
		}
	})
	twoGPUs := func(name string) *corev1.Pod {
		p := kernelPodFor("team-a", name, "absent")
		p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("2")}
		return p
	}
	dryRun := func(p *corev1.Pod) error { return env.Client.Create(context.Background(), p, client.DryRunAll) }
	require.Error(t, dryRun(twoGPUs("k-before")), "2 GPUs are over team-a's maximum of 1")

	// Raised to 2: the next pod with 2 GPUs is admitted, and a kernel asking for 2 is stored.
	setPolicy(t, policyConfigMap(2).Data[webhook.PolicyKey], func() bool { return dryRun(twoGPUs("k-after")) == nil })
	k := &ejv1.JupyterKernel{ObjectMeta: metav1.ObjectMeta{Name: "2f1c1a0e-0000-4000-8000-000000000002", Namespace: "team-a"}}
	k.Spec.KernelSpec = &ejv1.ObjectRef{Name: "python3"}
	k.Spec.Env = []corev1.EnvVar{{Name: "KERNEL_GPUS", Value: "2"}}
	require.NoError(t, env.Client.Create(ctx(t), k))
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), k) })

	// A broken policy refuses kernel pods, with the field to fix, rather than lifting limits.
	setPolicy(t, "teams:\n  - name: team-a\n    namespaces: [team-a]\n    gpu: {maxPerKernal: 1}\n", func() bool {
		err := dryRun(kernelPodFor("team-a", "k-broken", "absent"))
		return err != nil && strings.Contains(err.Error(), `unknown field "teams[0].gpu.maxPerKernal"`)
	})
	assert.Contains(t, logs.String(), "team policy refused")

	// Lowered back to 1: the existing kernel may still be suspended (its old request is
	// allowed with a warning), but not changed to ask for more.
	setPolicy(t, policyConfigMap(1).Data[webhook.PolicyKey], func() bool {
		return dryRun(twoGPUs("k-again")) != nil && dryRun(kernelPodFor("team-a", "k-fixed", "absent")) == nil
	})
	c, w := warningClient(t)
	require.NoError(t, c.Get(ctx(t), client.ObjectKeyFromObject(k), k))
	k.Spec.Suspend = true
	require.NoError(t, c.Update(ctx(t), k), "an unchanged over-limit request does not block a suspension")
	assert.Contains(t, w.String(), "unchanged, so allowed, but invalid")
	k.Spec.Env[0].Value = "3"
	err := c.Update(ctx(t), k)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "team team-a allows at most 1")
}

func TestWebhookHasLeastPrivilege(t *testing.T) {
	c, err := client.New(webhookConfig, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "not-the-policy", Namespace: systemNS}}
	require.NoError(t, env.Client.Create(ctx(t), other))
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), other) })

	require.NoError(t, c.Get(ctx(t), client.ObjectKey{Namespace: systemNS, Name: webhook.DefaultPolicyConfigMap}, &corev1.ConfigMap{}))
	for name, err := range map[string]error{
		"another ConfigMap":          c.Get(ctx(t), client.ObjectKeyFromObject(other), &corev1.ConfigMap{}),
		"ConfigMaps elsewhere":       c.List(ctx(t), &corev1.ConfigMapList{}, client.InNamespace("team-a")),
		"Secrets":                    c.List(ctx(t), &corev1.SecretList{}, client.InNamespace("team-a")),
		"Pods":                       c.List(ctx(t), &corev1.PodList{}, client.InNamespace("team-a")),
		"writing a kernelspec":       c.Create(ctx(t), &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: "x", Namespace: "team-a"}, Spec: ejv1.JupyterKernelSpecSpec{Command: ipykernel}}),
		"all ConfigMaps of its home": c.List(ctx(t), &corev1.ConfigMapList{}, client.InNamespace(systemNS)),
	} {
		assert.True(t, apierrors.IsForbidden(err), "%s: forbidden, got %v", name, err)
	}
}
