package controller_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// kernelFixture makes a GPU template, a kernelspec on it and returns a kernel of that
// kernelspec (not yet created).
func kernelFixture(t *testing.T, ns, id string) *ejv1.JupyterKernel {
	t.Helper()
	ctx := context.Background()
	tmpl := &ejv1.JupyterKernelTemplate{ObjectMeta: metav1.ObjectMeta{Name: "gpu", Namespace: ns}}
	tmpl.Spec.Template = &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "vision"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: ejv1.KernelContainerName, Image: "template-image",
			Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{"nvidia.com/gpu": resource.MustParse("1")}},
		}}},
	}
	require.NoError(t, client.IgnoreAlreadyExists(k8s.Create(ctx, tmpl)))
	ks := &ejv1.JupyterKernelSpec{ObjectMeta: metav1.ObjectMeta{Name: "python3-gpu", Namespace: ns}}
	ks.Spec = ejv1.JupyterKernelSpecSpec{
		Language: "python", DisplayName: "Python 3 (GPU)", Image: "kernel-image",
		Command:   []string{"python3", "-m", "ipykernel_launcher", "-f", ejv1.ConnectionFilePlaceholder},
		Template:  &corev1.ObjectReference{Name: "gpu"},
		Env:       []corev1.EnvVar{{Name: "FROM_SPEC", Value: "1"}},
		Resources: &ejv1.KernelResources{CPU: ptr.To(resource.MustParse("500m")), Memory: ptr.To(resource.MustParse("1Gi"))},
	}
	require.NoError(t, client.IgnoreAlreadyExists(k8s.Create(ctx, ks)))
	k := &ejv1.JupyterKernel{ObjectMeta: metav1.ObjectMeta{
		Name: id, Namespace: ns,
		Labels:      map[string]string{ejv1.LabelGateway: "gw", ejv1.LabelKernelSpec: "python3-gpu"},
		Annotations: map[string]string{ejv1.AnnotationGatewayNamespace: ns},
	}}
	k.Spec.KernelSpec = &ejv1.ObjectRef{Name: "python3-gpu"}
	k.Spec.User = "Alice@Example.com"
	k.Spec.Env = []corev1.EnvVar{{Name: "KERNEL_USERNAME", Value: "alice"}}
	return k
}

// kernelPod waits for the kernel's pod (a different one than not, if given).
func kernelPod(t *testing.T, k *ejv1.JupyterKernel, not types.UID) *corev1.Pod {
	t.Helper()
	name := "alice-example-com-" + k.Name
	return eventually(t, types.NamespacedName{Namespace: k.Namespace, Name: name}, &corev1.Pod{},
		func(p *corev1.Pod) bool { return p.UID != not && p.DeletionTimestamp == nil }, "kernel pod %s exists", name)
}

func TestKernelSecretAndPodFromKernelSpecAndTemplate(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	k := kernelFixture(t, ns, "219cfd49-89ad-428c-8e0d-3e61e15d79a7")
	require.NoError(t, k8s.Create(ctx, k))

	secret := exists(t, ns, ejv1.ConnectionSecretName(k.Name), &corev1.Secret{})
	assertControlledBy(t, secret, k)
	assert.Equal(t, ejv1.ComponentKernelConnection, secret.Labels[ejv1.LabelComponent])
	assert.Equal(t, k.Name, secret.Labels[ejv1.LabelKernelID])
	var conn map[string]any
	require.NoError(t, json.Unmarshal(secret.Data[ejv1.ConnectionFileKey], &conn))
	assert.Equal(t, "tcp", conn["transport"])
	assert.Equal(t, "hmac-sha256", conn["signature_scheme"])
	assert.Equal(t, "", conn["ip"], "the launcher fills in the pod IP")
	assert.Equal(t, "python3-gpu", conn["kernel_name"])
	assert.Regexp(t, "^[0-9a-f]{64}$", conn["key"])
	ports := map[float64]bool{}
	for _, p := range []string{"shell_port", "iopub_port", "stdin_port", "control_port", "hb_port"} {
		port, ok := conn[p].(float64)
		require.True(t, ok, "%s is a number", p)
		ports[port] = true
	}
	assert.Len(t, ports, 5, "five distinct ports")

	pod := kernelPod(t, k, "")
	assertControlledBy(t, pod, k)
	assert.Equal(t, corev1.RestartPolicyNever, pod.Spec.RestartPolicy)
	assert.Equal(t, ejv1.ComponentKernel, pod.Labels[ejv1.LabelComponent])
	assert.Equal(t, k.Name, pod.Labels[ejv1.LabelKernelID])
	assert.Equal(t, "python3-gpu", pod.Labels[ejv1.LabelKernelSpec])
	assert.Equal(t, "gw", pod.Labels[ejv1.LabelGateway])
	assert.Equal(t, "vision", pod.Labels["team"], "the template's labels reach the pod")
	assert.Equal(t, ns+"/python3-gpu", pod.Annotations[ejv1.AnnotationKernelSpec])
	assert.Equal(t, secret.Name, pod.Annotations[ejv1.AnnotationConnectionSecret])
	c := pod.Spec.Containers[0]
	assert.Equal(t, ejv1.KernelContainerName, c.Name)
	assert.Equal(t, "kernel-image", c.Image, "the kernelspec's image wins over the template's")
	assert.Equal(t, []string{"python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"}, c.Command)
	assert.Equal(t, []corev1.EnvVar{{Name: "FROM_SPEC", Value: "1"}, {Name: "KERNEL_USERNAME", Value: "alice"}}, c.Env)
	assert.Equal(t, "500m", ptr.To(c.Resources.Limits[corev1.ResourceCPU]).String())
	assert.Equal(t, "1Gi", ptr.To(c.Resources.Requests[corev1.ResourceMemory]).String())
	assert.Equal(t, ptr.To(false), pod.Spec.AutomountServiceAccountToken, "kernels get no API credentials")

	k = kernelIn(t, k, phaseIs(ejv1.KernelPending), "a kernel whose pod is not scheduled is Pending")
	assert.Equal(t, pod.Name, k.Status.Pod)

	kubeletRun(t, pod, "10.1.2.3")
	k = kernelIn(t, k, phaseIs(ejv1.KernelRunning), "a Ready pod makes the kernel Running")
	assert.Equal(t, "10.1.2.3", k.Status.PodIP)
	assert.EqualValues(t, 1, k.Status.GPUs, "the template's nvidia.com/gpu limit is held")
	assert.NotNil(t, k.Status.StartTime)
	assert.True(t, meta.IsStatusConditionTrue(k.Status.Conditions, ejv1.ConditionReady))
	assertEvent(t, k, "Started")
}

func TestKernelSuspendDeletesThePodAndResumeMakesANewOne(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	k := kernelFixture(t, ns, "6f0f4c1e-5b4a-4f43-9a53-0c4d6a1e2b3c")
	require.NoError(t, k8s.Create(ctx, k))
	pod := kernelPod(t, k, "")
	kubeletRun(t, pod, "10.1.2.4")
	kernelIn(t, k, phaseIs(ejv1.KernelRunning), "Running")
	secret := exists(t, ns, ejv1.ConnectionSecretName(k.Name), &corev1.Secret{})

	// The gateway's activity fields are its own: the controller must leave them alone.
	active := metav1.Now()
	kk := &ejv1.JupyterKernel{}
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(k), kk))
	patch := client.MergeFrom(kk.DeepCopy())
	kk.Status.LastActivity, kk.Status.ExecutionState, kk.Status.Connections = &active, "idle", 2
	require.NoError(t, k8s.Status().Patch(ctx, kk, patch))

	update(t, k, func(k *ejv1.JupyterKernel) { k.Spec.Suspend = true })
	gone(t, ns, pod.Name, &corev1.Pod{})
	k = kernelIn(t, k, func(k *ejv1.JupyterKernel) bool {
		return phaseIs(ejv1.KernelSuspended)(k) && k.Status.GPUs == 0 && k.Status.Pod == ""
	}, "a suspended kernel holds no pod and no GPU")
	assert.Empty(t, k.Status.PodIP)
	assert.Equal(t, "idle", k.Status.ExecutionState, "the gateway's fields survive the controller's status writes")
	assert.EqualValues(t, 2, k.Status.Connections)
	assert.NotNil(t, k.Status.LastActivity)
	kept := exists(t, ns, secret.Name, &corev1.Secret{})
	assert.Equal(t, secret.UID, kept.UID, "the connection secret outlives the suspension")
	assert.Equal(t, secret.Data, kept.Data)
	assertEvent(t, k, "Suspended")

	update(t, k, func(k *ejv1.JupyterKernel) { k.Spec.Suspend = false })
	fresh := kernelPod(t, k, pod.UID)
	assert.NotEqual(t, pod.UID, fresh.UID, "resume makes a fresh pod")
	kubeletRun(t, fresh, "10.1.2.5")
	k = kernelIn(t, k, phaseIs(ejv1.KernelRunning), "the resumed kernel runs")
	assert.Equal(t, "10.1.2.5", k.Status.PodIP)
	assertEvent(t, k, "Resumed")
}

func TestKernelFailedPodIsReportedAndNotReplaced(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	k := kernelFixture(t, ns, "0d7a0e44-2d5f-4f0c-8c1b-6a7e3c2b1d0f")
	require.NoError(t, k8s.Create(ctx, k))
	pod := kernelPod(t, k, "")
	kubeletRun(t, pod, "10.1.2.6")
	kernelIn(t, k, phaseIs(ejv1.KernelRunning), "Running")

	kubeletStatus(t, pod, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		s.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}
		s.ContainerStatuses[0].Ready = false
		s.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 137, Reason: "OOMKilled", FinishedAt: metav1.Now(),
		}}
	})
	k = kernelIn(t, k, phaseIs(ejv1.KernelFailed), "an OOM-killed kernel has failed")
	assert.Equal(t, "OOMKilled", k.Status.Reason)
	assert.Contains(t, k.Status.Message, "memory")
	assert.EqualValues(t, 0, k.Status.GPUs, "a terminated pod holds no GPU")
	assert.NotNil(t, k.Status.CompletionTime)
	assertEvent(t, k, "Failed")

	pods := &corev1.PodList{}
	require.NoError(t, k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{ejv1.LabelKernelID: k.Name}))
	require.Len(t, pods.Items, 1, "a failed kernel pod is not replaced")
	assert.Equal(t, pod.UID, pods.Items[0].UID)
}

func TestKernelImagePullFailureFailsTheKernelAndFreesThePod(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	k := kernelFixture(t, ns, "8a3c1f5e-7d2b-4e6a-9c0d-1b2a3c4d5e6f")
	require.NoError(t, k8s.Create(ctx, k))
	pod := kernelPod(t, k, "")
	kubeletStatus(t, pod, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
		s.ContainerStatuses = []corev1.ContainerStatus{{
			Name: ejv1.KernelContainerName, Image: "kernel-image",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image \"kernel-image\""}},
		}}
	})
	k = kernelIn(t, k, phaseIs(ejv1.KernelFailed), "a kernel whose image cannot be pulled has failed")
	assert.Equal(t, "ImagePullFailed", k.Status.Reason)
	assert.Contains(t, k.Status.Message, "kernel-image")
	gone(t, ns, pod.Name, &corev1.Pod{})
	k = kernelIn(t, k, func(k *ejv1.JupyterKernel) bool { return k.Status.GPUs == 0 }, "the GPU is freed")
	assert.Equal(t, ejv1.KernelFailed, k.Status.Phase, "the failure stays reported once the pod is gone")
	assert.Equal(t, "ImagePullFailed", k.Status.Reason)
}

func TestKernelUnschedulableIsPendingWithTheSchedulersReason(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	k := kernelFixture(t, ns, "3e2d1c0b-4a59-4687-9a5b-4c3d2e1f0a9b")
	require.NoError(t, k8s.Create(ctx, k))
	pod := kernelPod(t, k, "")
	kubeletStatus(t, pod, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
			Message: "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}}
	})
	k = kernelIn(t, k, func(k *ejv1.JupyterKernel) bool { return k.Status.Reason == "Unschedulable" }, "the scheduler's reason is reported")
	assert.Equal(t, ejv1.KernelPending, k.Status.Phase)
	assert.Contains(t, k.Status.Message, "Insufficient nvidia.com/gpu")
}

func TestDeletingAKernelRemovesItsPodAndSecret(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	k := kernelFixture(t, ns, "5c4b3a29-1807-4f6e-8d5c-4b3a29180706")
	require.NoError(t, k8s.Create(ctx, k))
	pod := kernelPod(t, k, "")
	secret := exists(t, ns, ejv1.ConnectionSecretName(k.Name), &corev1.Secret{})

	require.NoError(t, k8s.Delete(ctx, k))
	gone(t, ns, pod.Name, &corev1.Pod{})
	gone(t, ns, secret.Name, &corev1.Secret{})
}

func assertControlledBy(t *testing.T, obj, owner client.Object) {
	t.Helper()
	ref := metav1.GetControllerOf(obj)
	require.NotNil(t, ref, "%T %s has a controller owner reference", obj, obj.GetName())
	assert.Equal(t, owner.GetUID(), ref.UID, "%T %s is controlled by %s", obj, obj.GetName(), owner.GetName())
	assert.True(t, ptr.Deref(ref.BlockOwnerDeletion, false))
}

// The gateway suspends and resumes as fast as the culler and the next cell come: a resume
// racing its suspension must bring a fresh pod, never a failed kernel.
func TestKernelRapidSuspendResumeNeverFails(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	k := kernelFixture(t, ns, "c0ffee00-1111-4222-8333-444455556666")
	w, err := k8s.Watch(ctx, &corev1.PodList{}, client.InNamespace(ns), client.MatchingLabels{ejv1.LabelKernelID: k.Name})
	require.NoError(t, err)
	defer w.Stop()
	next := func(typ watch.EventType) {
		t.Helper()
		timeout := time.After(wait)
		for {
			select {
			case ev := <-w.ResultChan():
				if ev.Type == typ {
					return
				}
			case <-timeout:
				got := &ejv1.JupyterKernel{}
				_ = k8s.Get(ctx, client.ObjectKeyFromObject(k), got)
				t.Fatalf("no %s pod event; kernel status: %+v", typ, got.Status)
			}
		}
	}
	require.NoError(t, k8s.Create(ctx, k))
	next(watch.Added)
	for range 10 {
		update(t, k, func(k *ejv1.JupyterKernel) { k.Spec.Suspend = true })
		next(watch.Deleted)
		update(t, k, func(k *ejv1.JupyterKernel) { k.Spec.Suspend = false })
		next(watch.Added)
	}
	got := kernelIn(t, k, phaseIs(ejv1.KernelPending), "the last resume leaves a pending kernel")
	assert.NotEqual(t, ejv1.KernelFailed, got.Status.Phase)
}
