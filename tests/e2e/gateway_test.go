package e2e

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/controller"
	"github.com/elastic-jupyter/elastic-jupyter/devnode"
	"github.com/elastic-jupyter/elastic-jupyter/internal/devcluster"
	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
)

// gpuResource is the GPU resource of the quick start's team policy.
const gpuResource corev1.ResourceName = "nvidia.com/gpu"

// gatewayClient talks to the quick start's gateway directly, as Jupyter Server's gateway
// client does.
type gatewayClient struct {
	t     *testing.T
	token string
}

func newGatewayClient(t *testing.T) *gatewayClient {
	t.Helper()
	enc := kubectl(t, "-n", devcluster.TeamNamespace, "get", "secret",
		devcluster.GatewayName+controller.GatewayTokenSecretSuffix, "-o", "jsonpath={.data.token}")
	tok, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	require.NoError(t, err)
	require.NotEmpty(t, tok, "the gateway has a token")
	return &gatewayClient{t: t, token: string(tok)}
}

func (g *gatewayClient) api(method, path string, body, out any) int {
	g.t.Helper()
	return jupytertest.API(g.t, method, env.GatewayURL+path, g.token, body, out)
}

// start starts a kernel of kernelspec name and returns its id.
func (g *gatewayClient) start(name string) string {
	g.t.Helper()
	var model map[string]any
	code := g.api("POST", "/api/kernels", map[string]any{"name": name, "env": map[string]string{"KERNEL_USERNAME": "gwtest"}}, &model)
	require.Equal(g.t, http.StatusCreated, code, "POST /api/kernels: %v", model)
	id, _ := model["id"].(string)
	require.NotEmpty(g.t, id)
	return id
}

// listed returns the gateway's kernel models by id.
func (g *gatewayClient) listed() map[string]map[string]any {
	g.t.Helper()
	var list []map[string]any
	require.Equal(g.t, http.StatusOK, g.api("GET", "/api/kernels", nil, &list))
	out := map[string]map[string]any{}
	for _, m := range list {
		id, _ := m["id"].(string)
		out[id] = m
	}
	return out
}

// raw opens a websocket on kernel id without a handshake: the first message the test sends
// is the client's first (a cell run at once, or a resume driven by the cell itself).
func (g *gatewayClient) raw(id string) *jupytertest.WSClient {
	g.t.Helper()
	return jupytertest.DialWSRaw(g.t, env.GatewayURL+"/api/kernels/"+id+"/channels", g.token)
}

// executeFirst runs code as the very first message on a new websocket of kernel id (no
// kernel_info handshake, which would itself wait for a kernel that starts) and collects the
// answer.
func (g *gatewayClient) executeFirst(id, code string, timeout time.Duration) jupytertest.Execution {
	g.t.Helper()
	return g.raw(id).Execute(code, timeout)
}

func (g *gatewayClient) channels(id string) *jupytertest.WSClient {
	g.t.Helper()
	return jupytertest.DialWS(g.t, env.GatewayURL+"/api/kernels/"+id+"/channels", g.token)
}

// kernelPods returns the pods of kernel id.
func kernelPods(t *testing.T, id string) []corev1.Pod {
	t.Helper()
	var list corev1.PodList
	out := kubectl(t, "-n", devcluster.TeamNamespace, "get", "pods", "-l", ejv1.LabelKernelID+"="+id, "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	return list.Items
}

// runningKernelPod waits until kernel id has exactly one pod and it is Ready.
func runningKernelPod(t *testing.T, id string) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	require.Eventually(t, func() bool {
		pods := kernelPods(t, id)
		if len(pods) != 1 || pods[0].DeletionTimestamp != nil || !podReady(&pods[0]) {
			return false
		}
		pod = pods[0]
		return true
	}, 3*time.Minute, 250*time.Millisecond, "kernel %s has one Ready pod", id)
	return pod
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// kernelCR returns kernel id's JupyterKernel, or false when it does not exist.
func kernelCR(t *testing.T, id string) (kernelStatus, bool) {
	t.Helper()
	for _, k := range kernels(t) {
		if k.Metadata.Name == id {
			return k, true
		}
	}
	return kernelStatus{}, false
}

// readyGatewayPod returns the UID of the gateway's only pod once it is Ready.
func readyGatewayPod(t *testing.T, notUID string) string {
	t.Helper()
	var uid string
	require.Eventually(t, func() bool {
		var list corev1.PodList
		out := kubectl(t, "-n", devcluster.TeamNamespace, "get", "pods", "-l", ejv1.LabelComponent+"="+ejv1.ComponentGateway, "-o", "json")
		require.NoError(t, json.Unmarshal([]byte(out), &list))
		if len(list.Items) != 1 {
			return false
		}
		p := list.Items[0]
		if string(p.UID) == notUID || p.DeletionTimestamp != nil || !podReady(&p) {
			return false
		}
		uid = string(p.UID)
		return true
	}, 3*time.Minute, 250*time.Millisecond, "the gateway has one Ready pod")
	return uid
}

// cullSettings is the part of the JupyterGateway's spec this test edits.
type cullSettings struct {
	CullIdleTimeout *int32 `json:"cullIdleTimeout"`
	CullInterval    *int32 `json:"cullInterval"`
	CullPolicy      string `json:"cullPolicy,omitempty"`
}

func patchGateway(t *testing.T, s cullSettings) {
	t.Helper()
	patch, err := json.Marshal(map[string]any{"spec": s})
	require.NoError(t, err)
	kubectl(t, "-n", devcluster.TeamNamespace, "patch", "jupytergateway", devcluster.GatewayName, "--type=merge", "-p", string(patch))
}

func int32p(v int32) *int32 { return &v }

// TestGatewayKubernetes drives the gateway's own REST API and websocket on the real control
// plane: a GPU kernel in its own pod through the webhook-injected launcher, a gateway restart
// that keeps it, and both cull policies.
func TestGatewayKubernetes(t *testing.T) {
	g := newGatewayClient(t)

	// Put the gateway's cull settings back and delete every kernel started here, whatever
	// happens: the other tests share the GPUs.
	var saved struct {
		Spec cullSettings `json:"spec"`
	}
	require.NoError(t, json.Unmarshal([]byte(kubectl(t, "-n", devcluster.TeamNamespace, "get", "jupytergateway", devcluster.GatewayName, "-o", "json")), &saved))
	var started []string
	t.Cleanup(func() {
		patchGateway(t, saved.Spec)
		for _, id := range started {
			code := g.api("DELETE", "/api/kernels/"+id, nil, nil)
			assert.Contains(t, []int{http.StatusNoContent, http.StatusNotFound}, code, "DELETE kernel %s", id)
		}
		require.Eventually(t, func() bool {
			for _, id := range started {
				if _, ok := kernelCR(t, id); ok || len(kernelPods(t, id)) > 0 {
					return false
				}
			}
			return true
		}, 2*time.Minute, 250*time.Millisecond, "every kernel of this test and its pod are gone")
	})

	waitNoGPUHeld(t) // another test's kernel may still be giving a GPU back

	// A python3-gpu kernel runs in its own pod, mutated by the webhook, on the GPU node.
	a := g.start("python3-gpu")
	started = append(started, a)
	cr, ok := kernelCR(t, a)
	require.True(t, ok, "kernel %s has a JupyterKernel", a)
	t.Logf("kernel %s: JupyterKernel phase %s", a, cr.Status.Phase)
	pod := runningKernelPod(t, a)
	assert.Equal(t, "true", pod.Annotations[ejv1.AnnotationLauncherInjected], "the webhook mutated the pod")
	var initNames []string
	for _, c := range pod.Spec.InitContainers {
		initNames = append(initNames, c.Name)
	}
	assert.Contains(t, initNames, "kernel-launcher-install", "the launcher's init container")
	var kernelC *corev1.Container
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == ejv1.KernelContainerName {
			kernelC = &pod.Spec.Containers[i]
		}
	}
	require.NotNil(t, kernelC, "the pod has a kernel container")
	require.NotEmpty(t, kernelC.Command)
	assert.True(t, strings.HasSuffix(kernelC.Command[0], "/kernel-launcher"), "the kernel runs through the launcher: %v", kernelC.Command)
	gpus := kernelC.Resources.Limits[gpuResource]
	assert.Equal(t, int64(1), gpus.Value(), "one GPU")
	assert.Equal(t, cluster.Config().NodeName+"-gpu", pod.Spec.NodeName, "the GPU kernel lands on the GPU node")

	ws := g.channels(a)
	ex := ws.Execute(printDevices, 2*time.Minute)
	require.Equal(t, "ok", ex.Status, ex.EName)
	assert.Equal(t, devnode.DeviceID(pod.Spec.NodeName, gpuResource, 0), strings.TrimSpace(ex.Stdout), "the device devnode assigned")
	ex = ws.Execute("survivor = 6 * 7", time.Minute)
	require.Equal(t, "ok", ex.Status, ex.EName)
	require.NoError(t, ws.WS.Close())

	// The gateway restarts (its pod is deleted, its Deployment makes a new one): the kernel
	// stays listed, its pod runs on untouched and its state is still there.
	oldGW := readyGatewayPod(t, "")
	restartAt := time.Now()
	kubectl(t, "-n", devcluster.TeamNamespace, "delete", "pod", "-l", ejv1.LabelComponent+"="+ejv1.ComponentGateway, "--wait=false")
	newGW := readyGatewayPod(t, oldGW)
	t.Logf("gateway pod %s replaced by %s", oldGW, newGW)
	require.Eventually(t, func() bool {
		var list []map[string]any
		code := g.api("GET", "/api/kernels", nil, &list)
		for _, m := range list {
			if m["id"] == a {
				return code == http.StatusOK
			}
		}
		return false
	}, 2*time.Minute, 250*time.Millisecond, "the restarted gateway lists kernel %s", a)
	relisted := time.Since(restartAt)
	after := runningKernelPod(t, a)
	assert.Equal(t, pod.UID, after.UID, "the kernel's pod was not replaced")
	for _, cs := range after.Status.ContainerStatuses {
		assert.Zero(t, cs.RestartCount, "container %s did not restart", cs.Name)
	}
	ws = g.channels(a)
	ex = ws.Execute("print(survivor)", time.Minute)
	require.Equal(t, "ok", ex.Status, ex.EName)
	assert.Equal(t, "42", strings.TrimSpace(ex.Stdout), "the kernel kept its state across the gateway's restart")
	require.NoError(t, ws.WS.Close())

	// cullPolicy Delete, edited live: the idle kernel, its JupyterKernel and its pod go.
	patchGateway(t, cullSettings{CullIdleTimeout: int32p(3), CullInterval: int32p(1), CullPolicy: string(ejv1.CullPolicyDelete)})
	require.Eventually(t, func() bool {
		_, listed := g.listed()[a]
		_, exists := kernelCR(t, a)
		return !listed && !exists && len(kernelPods(t, a)) == 0
	}, 3*time.Minute, 250*time.Millisecond, "kernel %s is culled with Delete", a)
	assert.Equal(t, newGW, readyGatewayPod(t, ""), "the edit did not restart the gateway")

	// cullPolicy Suspend: the pod goes, the kernel stays, the next execute brings it back.
	patchGateway(t, cullSettings{CullIdleTimeout: int32p(120), CullInterval: int32p(1), CullPolicy: string(ejv1.CullPolicySuspend)})
	b := g.start("python3-gpu")
	started = append(started, b)
	podB := runningKernelPod(t, b)
	ws = g.channels(b)
	ex = ws.Execute(printDevices, 2*time.Minute)
	require.Equal(t, "ok", ex.Status, ex.EName)
	ex = ws.Execute("x = 41", time.Minute)
	require.Equal(t, "ok", ex.Status, ex.EName)
	require.NoError(t, ws.WS.Close())
	patchGateway(t, cullSettings{CullIdleTimeout: int32p(3), CullInterval: int32p(1), CullPolicy: string(ejv1.CullPolicySuspend)})
	require.Eventually(t, func() bool {
		k, ok := kernelCR(t, b)
		return ok && k.Status.Phase == string(ejv1.KernelSuspended) && len(kernelPods(t, b)) == 0
	}, 3*time.Minute, 250*time.Millisecond, "kernel %s is suspended and its pod is gone", b)
	model, listed := g.listed()[b]
	require.True(t, listed, "a suspended kernel stays listed")
	assert.Equal(t, true, model["suspended"], "the model says it is suspended: %v", model)
	k, _ := kernelCR(t, b)
	assert.Zero(t, k.Status.GPUs, "a suspended kernel holds no GPU")

	k, _ = kernelCR(t, b)
	require.NotNil(t, k.Status.State, "the kernel keeps state")
	assert.True(t, k.Status.State.Saved, "its variables wait on the state volume: %+v", k.Status.State)

	// The gateway restarts while the kernel is suspended: the variables still come back.
	// Culling stops first, so the resumed kernel is not suspended again under us.
	patchGateway(t, saved.Spec)
	restarted := readyGatewayPod(t, "")
	kubectl(t, "-n", devcluster.TeamNamespace, "delete", "pod", "-l", ejv1.LabelComponent+"="+ejv1.ComponentGateway, "--wait=false")
	readyGatewayPod(t, restarted)
	require.Eventually(t, func() bool { _, listed := g.listed()[b]; return listed }, 2*time.Minute, 250*time.Millisecond, "the restarted gateway lists kernel %s", b)
	resumeAt := time.Now()
	ex = g.executeFirst(b, "import os; print(x + 1, os.environ['NVIDIA_VISIBLE_DEVICES'])", 3*time.Minute)
	resumed := time.Since(resumeAt)
	require.Equal(t, "ok", ex.Status, ex.EName)
	assert.Contains(t, ex.Statuses, "starting", "the client sees the kernel starting again: %v", ex.Statuses)
	assert.Contains(t, ex.Stderr, "resumed: restored 1 variable", "the cell says what came back")
	podB2 := runningKernelPod(t, b)
	assert.NotEqual(t, podB.UID, podB2.UID, "the resumed kernel runs in a new pod")
	assert.Equal(t, "42 "+devnode.DeviceID(podB2.Spec.NodeName, gpuResource, 0), strings.TrimSpace(ex.Stdout), "x came back across the suspension and the gateway's restart")
	model = g.listed()[b]
	assert.Equal(t, false, model["suspended"], "resumed: %v", model)
	fmt.Printf("e2e: the gateway's restart took %s until it listed the running kernel again; a suspended GPU kernel answered its first execute %s after it was sent\n",
		relisted.Round(100*time.Millisecond), resumed.Round(100*time.Millisecond))
}
