package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/devcluster"
	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
)

const printDevices = `import os; print(os.environ["NVIDIA_VISIBLE_DEVICES"])`

func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := cluster.KubectlOutput(ctx, args...)
	require.NoError(t, err)
	return out
}

// kernelStatus is the part of a JupyterKernel the tests read.
type kernelStatus struct {
	Metadata struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Status struct {
		Phase         string                  `json:"phase"`
		Reason        string                  `json:"reason"`
		Message       string                  `json:"message"`
		QueuePosition int                     `json:"queuePosition"`
		Pod           string                  `json:"pod"`
		GPUs          int                     `json:"gpus"`
		State         *ejv1.KernelStateStatus `json:"state"`
	} `json:"status"`
}

func kernels(t *testing.T) []kernelStatus {
	t.Helper()
	var list struct{ Items []kernelStatus }
	require.NoError(t, json.Unmarshal([]byte(kubectl(t, "-n", devcluster.TeamNamespace, "get", "jupyterkernels", "-o", "json")), &list))
	return list.Items
}

// startKernel asks the notebook server for a kernel, as JupyterLab does when a notebook opens.
func startKernel(t *testing.T, name string) (string, int) {
	var model map[string]any
	code := jupytertest.API(t, "POST", env.NotebookBase+"/api/kernels", env.NotebookToken, map[string]string{"name": name}, &model)
	id, _ := model["id"].(string)
	return id, code
}

func channels(t *testing.T, id string) *jupytertest.WSClient {
	return jupytertest.DialWS(t, env.NotebookBase+"/api/kernels/"+id+"/channels", env.NotebookToken)
}

func gatewayPod(t *testing.T) (uid string, restarts string) {
	out := kubectl(t, "-n", devcluster.TeamNamespace, "get", "pods", "-l", "app.kubernetes.io/component=gateway",
		"-o", "jsonpath={.items[0].metadata.uid} {.items[0].status.containerStatuses[0].restartCount}")
	f := strings.Fields(out)
	require.Len(t, f, 2, out)
	return f[0], f[1]
}

// shutDownKernels shuts every kernel of the notebook server down, so the next test finds the
// GPU free.
func shutDownKernels(t *testing.T) {
	var list []map[string]any
	require.Equal(t, 200, jupytertest.API(t, "GET", env.NotebookBase+"/api/kernels", env.NotebookToken, nil, &list))
	for _, k := range list {
		jupytertest.API(t, "DELETE", env.NotebookBase+"/api/kernels/"+k["id"].(string), env.NotebookToken, nil, nil)
	}
	require.Eventually(t, func() bool { return len(kernels(t)) == 0 }, 2*time.Minute, 500*time.Millisecond, "every kernel is gone")
}

// TestGPUHandoff: with every GPU but one held, notebook A's idle kernel gives the last GPU to
// notebook B's.
func TestGPUHandoff(t *testing.T) {
	t.Cleanup(func() { shutDownKernels(t) })
	waitNoGPUHeld(t)
	holdGPUs(t, newGatewayClient(t), cluster.Config().GPUs-1)
	gwUID, gwRestarts := gatewayPod(t)

	// A starts a GPU kernel and uses the GPU.
	a, code := startKernel(t, "python3-gpu")
	require.Equal(t, 201, code)
	wsA := channels(t, a)
	exA := wsA.Execute(printDevices, 2*time.Minute)
	require.Equal(t, "ok", exA.Status, exA.EName)
	deviceA := strings.TrimSpace(exA.Stdout)
	assert.Regexp(t, `^GPU-e2e-gpu-\d+$`, deviceA, "a fake GPU of the GPU node")
	require.NoError(t, wsA.WS.Close()) // A's user walks away
	t.Logf("kernel A %s runs on %s", a, deviceA)

	// B asks for a GPU kernel: the start answers at once, and its pod waits in the GPU queue.
	b, code := startKernel(t, "python3-gpu")
	require.Equal(t, 201, code)
	require.Eventually(t, func() bool {
		k, ok := kernelCR(t, b)
		return ok && k.Status.Phase == "Pending" && strings.Contains(k.Status.Message, fmt.Sprintf("waiting for a GPU: 0 of %d nvidia.com/gpu free", cluster.Config().GPUs))
	}, time.Minute, 200*time.Millisecond, "B's kernel waits for a GPU")
	k, _ := kernelCR(t, b)
	t.Logf("kernel B %s is Pending: %s", b, k.Status.Message)

	var modelA map[string]any
	require.Equal(t, 200, jupytertest.API(t, "GET", env.NotebookBase+"/api/kernels/"+a, env.NotebookToken, nil, &modelA))
	lastA, err := time.Parse("2006-01-02T15:04:05.000000Z", modelA["last_activity"].(string))
	require.NoError(t, err)

	// The team shortens its idle timeout by editing the gateway: no restart.
	kubectl(t, "-n", devcluster.TeamNamespace, "patch", "jupytergateway", devcluster.GatewayName, "--type=merge",
		"-p", `{"spec":{"cullIdleTimeout":5,"cullInterval":1}}`)
	edited := time.Now()

	// A is culled, its pod deleted; B gets the GPU and runs.
	wsB := channels(t, b)
	exB := wsB.Execute(printDevices, 2*time.Minute)
	firstOutput := time.Now()
	require.Equal(t, "ok", exB.Status, exB.EName)
	assert.Equal(t, deviceA, strings.TrimSpace(exB.Stdout), "B runs on the GPU A gave back")

	for _, k := range kernels(t) {
		if k.Metadata.Name == a {
			assert.Equal(t, "Suspended", k.Status.Phase, "A was culled with the quick start's Suspend policy")
			assert.Equal(t, 0, k.Status.GPUs)
		}
	}
	pods := kubectl(t, "-n", devcluster.TeamNamespace, "get", "pods", "-o", "name")
	assert.NotContains(t, pods, a, "A's pod is gone")

	uid, restarts := gatewayPod(t)
	assert.Equal(t, gwUID, uid, "the gateway was not restarted by the edit")
	assert.Equal(t, gwRestarts, restarts)

	// The idle threshold passed 5 s after A's last activity, or at the edit if that was later.
	threshold := lastA.Add(5 * time.Second)
	if edited.After(threshold) {
		threshold = edited
	}
	t.Logf("GPU handoff: %s from A's idle threshold to B's first output", firstOutput.Sub(threshold).Round(100*time.Millisecond))
	fmt.Printf("e2e: GPU handoff took %s from A's idle threshold to B's first output\n", firstOutput.Sub(threshold).Round(100*time.Millisecond))

	// A comes back on its next cell (on the GPU once B is gone).
	require.Equal(t, 204, jupytertest.API(t, "DELETE", env.NotebookBase+"/api/kernels/"+b, env.NotebookToken, nil, nil))
	wsA2 := channels(t, a)
	exA2 := wsA2.Execute(printDevices, 3*time.Minute)
	assert.Equal(t, "ok", exA2.Status)
	assert.Equal(t, deviceA, strings.TrimSpace(exA2.Stdout))
	require.Equal(t, 204, jupytertest.API(t, "DELETE", env.NotebookBase+"/api/kernels/"+a, env.NotebookToken, nil, nil))
	kubectl(t, "-n", devcluster.TeamNamespace, "patch", "jupytergateway", devcluster.GatewayName, "--type=merge",
		"-p", `{"spec":{"cullIdleTimeout":120,"cullInterval":10}}`)
}
