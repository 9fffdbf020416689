package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/devcluster"
	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// cellAtOnce runs code as the first message of a new websocket on kernel id, right after the
// start answered, and returns the websocket and the request (its answer is collected later).
func (g *gatewayClient) cellAtOnce(id, code string) (*jupytertest.WSClient, *jupyter.Message) {
	g.t.Helper()
	ws := g.raw(id)
	req := ws.Send("shell", "execute_request", map[string]any{"code": code, "silent": false, "store_history": true, "allow_stdin": false})
	return ws, req
}

// holdGPUs starts n GPU kernels through the gateway, each busy with a long cell (a busy kernel
// is never culled), so they hold n of the GPUs; they are shut down when the test ends.
func holdGPUs(t *testing.T, g *gatewayClient, n int) []string {
	t.Helper()
	var ids []string
	cleanUpKernels(t, g, &ids)
	for range n {
		id := g.start("python3-gpu")
		ids = append(ids, id)
		ws, req := g.cellAtOnce(id, "import time\nprint('holding a GPU', flush=True)\ntime.sleep(3600)")
		ws.WaitStdout(req, "holding a GPU", 3*time.Minute)
	}
	return ids
}

// waitNoGPUHeld waits until no kernel holds a GPU (another test may be giving one back).
func waitNoGPUHeld(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, k := range kernels(t) {
			if k.Status.GPUs > 0 {
				return false
			}
		}
		return true
	}, 3*time.Minute, 250*time.Millisecond, "no kernel holds the GPU")
}

// cleanUpKernels deletes the kernels a test started when it ends, and waits until their
// JupyterKernels, pods and Secrets are gone.
func cleanUpKernels(t *testing.T, g *gatewayClient, ids *[]string) {
	t.Cleanup(func() {
		for _, id := range *ids {
			g.api("DELETE", "/api/kernels/"+id, nil, nil)
		}
		for _, id := range *ids {
			nothingLeftOf(t, id)
		}
	})
}

// nothingLeftOf waits until kernel id has no JupyterKernel, pod or connection Secret.
func nothingLeftOf(t *testing.T, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		_, cr := kernelCR(t, id)
		secrets := kubectl(t, "-n", devcluster.TeamNamespace, "get", "secrets", "-o", "name")
		return !cr && len(kernelPods(t, id)) == 0 && !strings.Contains(secrets, ejv1.ConnectionSecretName(id))
	}, 2*time.Minute, 250*time.Millisecond, "nothing of kernel %s is left: no JupyterKernel, pod or Secret", id)
}

// TestGPUWaitIsToldAndFirstComeFirstServed: with every GPU held, two more GPU kernels
// start at once; each start answers 201 at once, each cell run at once is held, and each
// notebook is told where it waits; they get the GPU in the order they arrived, and each held
// cell then runs.
func TestGPUWaitIsToldAndFirstComeFirstServed(t *testing.T) {
	g := newGatewayClient(t)
	var started []string
	cleanUpKernels(t, g, &started)
	waitNoGPUHeld(t)
	gpus := cluster.Config().GPUs
	holdGPUs(t, g, gpus-1) // A takes the last one

	startedAt := time.Now()
	a := g.start("python3-gpu")
	started = append(started, a)
	postTook := time.Since(startedAt)
	wsA, reqA := g.cellAtOnce(a, "print('A runs')")
	exA := wsA.Collect(reqA, 3*time.Minute)
	require.Equal(t, "ok", exA.Status, exA.EValue)
	assert.Equal(t, "A runs\n", exA.Stdout, "a cell run before the kernel was up is not lost")
	assert.Contains(t, exA.Statuses, "starting", "the notebook saw the kernel starting")
	t.Logf("A: POST answered in %s, the cell sent at once printed after %s", postTook.Round(time.Millisecond), time.Since(startedAt).Round(100*time.Millisecond))

	b := g.start("python3-gpu")
	started = append(started, b)
	wsB, reqB := g.cellAtOnce(b, "print('B runs')")
	lineB := wsB.WaitStderr(reqB, fmt.Sprintf("waiting for a GPU: 0 of %d nvidia.com/gpu free (no kernel ahead of you)", gpus), 2*time.Minute)
	t.Logf("B's cell shows: %s", strings.TrimSpace(lineB))

	c := g.start("python3-gpu")
	started = append(started, c)
	wsC, reqC := g.cellAtOnce(c, "print('C runs')")
	wsC.WaitStderr(reqC, fmt.Sprintf("waiting for a GPU: 0 of %d nvidia.com/gpu free (1 kernel ahead of you)", gpus), 2*time.Minute)
	require.Eventually(t, func() bool {
		k, _ := kernelCR(t, c)
		return k.Status.Reason == "Queued" && k.Status.QueuePosition == 1
	}, time.Minute, 250*time.Millisecond, "C's JupyterKernel says one kernel is ahead of it")
	var model map[string]any
	require.Equal(t, http.StatusOK, g.api("GET", "/api/kernels/"+c, nil, &model))
	assert.Equal(t, "starting", model["execution_state"])
	assert.Contains(t, model["reason"], "1 kernel ahead of you", "the kernel model says why too")

	// A is shut down: its GPU goes to B, who came first; C moves up.
	require.Equal(t, http.StatusNoContent, g.api("DELETE", "/api/kernels/"+a, nil, nil))
	exB := wsB.Collect(reqB, 3*time.Minute)
	require.Equal(t, "ok", exB.Status, exB.EValue)
	assert.Equal(t, "B runs\n", exB.Stdout)
	wsC.WaitStderr(reqC, "(no kernel ahead of you)", 2*time.Minute)
	k, _ := kernelCR(t, c)
	assert.Equal(t, "Pending", k.Status.Phase, "C still waits while B holds the GPU")

	// B is shut down: C's held cell runs.
	require.Equal(t, http.StatusNoContent, g.api("DELETE", "/api/kernels/"+b, nil, nil))
	exC := wsC.Collect(reqC, 3*time.Minute)
	require.Equal(t, "ok", exC.Status, exC.EValue)
	assert.Equal(t, "C runs\n", exC.Stdout)
}

// TestAKernelThatCannotStartSaysWhy: a kernel whose image cannot run, and one that passes
// its launch timeout waiting for a GPU, end with an error in the notebook that names the
// cause; the JupyterKernel keeps the reason until the culler removes the dead kernel, and then
// nothing of them is left.
func TestAKernelThatCannotStartSaysWhy(t *testing.T) {
	g := newGatewayClient(t)
	var started []string
	cleanUpKernels(t, g, &started)
	waitNoGPUHeld(t)
	saved := gatewaySpec(t)
	t.Cleanup(func() {
		kubectl(t, "-n", devcluster.TeamNamespace, "delete", "jupyterkernelspec", "broken", "--ignore-not-found")
		restoreGatewaySpec(t, saved)
	})

	// A kernelspec whose image has no such command: devnode, as a kubelet, cannot start it.
	kubectlApply(t, fmt.Sprintf(`apiVersion: kubeflow.tkestack.io/v1alpha1
kind: JupyterKernelSpec
metadata: {name: broken, namespace: %s}
spec:
  displayName: Broken
  language: python
  image: example.com/no-such-kernel:1
  command: ["/opt/no-such-kernel/bin/kernel", "-f", "{connection_file}"]
`, devcluster.TeamNamespace))
	patchGatewayJSON(t, `{"spec":{"kernels":["python3","python3-gpu","broken"],"launchTimeout":8,"cullIdleTimeout":600,"cullInterval":600}}`)
	require.Eventually(t, func() bool {
		var specs struct{ Kernelspecs map[string]any }
		return g.api("GET", "/api/kernelspecs", nil, &specs) == http.StatusOK && specs.Kernelspecs["broken"] != nil
	}, 10*time.Second, 50*time.Millisecond, "the gateway offers the new kernelspec")

	broken := g.start("broken")
	started = append(started, broken)
	ws, req := g.cellAtOnce(broken, "print('never')")
	ex := ws.Collect(req, 2*time.Minute)
	assert.Equal(t, "error", ex.Status)
	assert.Equal(t, "KernelStartFailed", ex.EName)
	assert.Contains(t, ex.EValue, "/opt/no-such-kernel/bin/kernel", "the error names the cause")
	assert.Contains(t, ex.EValue, "fix the kernelspec's command or image", "and the fix")
	ws.WaitStatus("dead", time.Minute)
	var model map[string]any
	require.Equal(t, http.StatusOK, g.api("GET", "/api/kernels/"+broken, nil, &model))
	assert.Equal(t, "dead", model["execution_state"])
	k, _ := kernelCR(t, broken)
	assert.Equal(t, "Failed", k.Status.Phase)
	assert.Contains(t, []string{"ContainerCannotRun", "KernelExited"}, k.Status.Reason, "the JupyterKernel keeps the reason: %s", k.Status.Message)
	assert.Contains(t, k.Status.Message, "/opt/no-such-kernel/bin/kernel")

	// Every GPU is held; another GPU kernel passes its 8 s launch timeout waiting.
	holdGPUs(t, g, cluster.Config().GPUs)
	waiter := g.start("python3-gpu")
	started = append(started, waiter)
	ws, req = g.cellAtOnce(waiter, "print('never')")
	ws.WaitStderr(req, "waiting for a GPU", time.Minute)
	ex = ws.Collect(req, 2*time.Minute)
	assert.Equal(t, "error", ex.Status)
	assert.Contains(t, ex.EValue, "did not start within 8s", "the error says the deadline passed")
	assert.Contains(t, ex.EValue, fmt.Sprintf("waiting for a GPU: 0 of %d nvidia.com/gpu free", cluster.Config().GPUs), "and what it waited for")
	assert.Contains(t, ex.EValue, "ask for fewer GPUs (or none), or try again when one is free", "and what to do")
	k, _ = kernelCR(t, waiter)
	assert.Equal(t, "StartDeadlineExceeded", k.Status.Reason)

	// The culler removes dead kernels at once: nothing of either is left.
	patchGatewayJSON(t, `{"spec":{"cullInterval":1}}`)
	nothingLeftOf(t, broken)
	nothingLeftOf(t, waiter)
	assert.Equal(t, http.StatusNotFound, g.api("GET", "/api/kernels/"+waiter, nil, nil))
}

// gatewaySpec returns the quick start gateway's spec as JSON, to put it back later.
func gatewaySpec(t *testing.T) string {
	t.Helper()
	return kubectl(t, "-n", devcluster.TeamNamespace, "get", "jupytergateway", devcluster.GatewayName, "-o", "jsonpath={.spec}")
}

func restoreGatewaySpec(t *testing.T, spec string) {
	t.Helper()
	kubectl(t, "-n", devcluster.TeamNamespace, "patch", "jupytergateway", devcluster.GatewayName, "--type=merge", "-p", `{"spec":`+spec+`}`)
}

func patchGatewayJSON(t *testing.T, patch string) {
	t.Helper()
	kubectl(t, "-n", devcluster.TeamNamespace, "patch", "jupytergateway", devcluster.GatewayName, "--type=merge", "-p", patch)
}

func kubectlApply(t *testing.T, manifest string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, cluster.KubectlApply(ctx, manifest))
}

// TestAKernelDeletedAsItStartsLeavesNothing: a notebook closed right after it opened deletes
// its kernel while the start is under way (the JupyterKernel may not be in the gateway's cache
// yet). The kernel is gone from the list at once, and its JupyterKernel and pod follow: no
// kernel keeps running, and holding a node's resources, for nobody.
func TestAKernelDeletedAsItStartsLeavesNothing(t *testing.T) {
	g := newGatewayClient(t)
	var ids []string
	for range 5 {
		id := g.start("python3")
		ids = append(ids, id)
		require.Equal(t, http.StatusNoContent, g.api("DELETE", "/api/kernels/"+id, nil, nil), "DELETE of starting kernel %s", id)
		assert.NotContains(t, g.listed(), id, "a deleted kernel is not listed")
	}
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if _, ok := kernelCR(t, id); ok {
				return false
			}
		}
		return true
	}, time.Minute, 500*time.Millisecond, "the JupyterKernels of kernels deleted as they started are gone")
	require.Eventually(t, func() bool {
		pods := kubectl(t, "-n", devcluster.TeamNamespace, "get", "pods", "-o", "name")
		for _, id := range ids {
			if strings.Contains(pods, id) {
				return false
			}
		}
		return true
	}, 2*time.Minute, 500*time.Millisecond, "their pods are gone")
}
