package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// gpuKernelName is the display name of the quick start's GPU kernelspec, as the launcher shows it.
const gpuKernelName = "Python 3 (1 GPU)"

// browserScript runs one of tests/e2e/browser's scripts in Chromium and returns it running,
// with its stdout (one JSON line per step) and stdin.
type browserScript struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	steps  *bufio.Scanner
	stderr *strings.Builder
}

func startBrowser(t *testing.T, ctx context.Context, script string, args ...string) *browserScript {
	t.Helper()
	require.NoError(t, os.MkdirAll(ArtifactsDir, 0o755))
	cmd := exec.CommandContext(ctx, "node", append([]string{filepath.Join(testenv.RepoRoot(), "tests", "e2e", "browser", script)}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(testenv.CacheDir(), "node", "node_modules"))
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	b := &browserScript{cmd: cmd, stdin: stdin, steps: bufio.NewScanner(stdout), stderr: &strings.Builder{}}
	cmd.Stderr = b.stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return b
}

// step reads the script's next step and decodes it into out (a map or struct).
func (b *browserScript) step(t *testing.T, want string, out any) {
	t.Helper()
	if !b.steps.Scan() {
		err := b.cmd.Wait()
		t.Fatalf("the browser script ended before step %q (%v):\n%s", want, err, b.stderr.String())
	}
	line := b.steps.Bytes()
	var head struct{ Step string }
	require.NoError(t, json.Unmarshal(line, &head), "%s", line)
	require.Equal(t, want, head.Step, "%s\n%s", line, b.stderr.String())
	if out != nil {
		require.NoError(t, json.Unmarshal(line, out))
	}
	t.Logf("browser: %s", line)
}

// TestNotebook6RunsACellOnAGPUKernel opens the classic Notebook 6 (Debian 12's, pointed at the
// quick start's gateway) in headless Chromium, creates a notebook on python3-gpu, runs
// print(6*7) and sees 42 in the page.
func TestNotebook6RunsACellOnAGPUKernel(t *testing.T) {
	g := newGatewayClient(t)
	nb := jupytertest.StartServer(t, jupytertest.ServerOptions{Notebook6: true, GatewayURL: env.GatewayURL, GatewayToken: g.token})
	t.Cleanup(func() { shutDownKernelsOf(t, nb) })
	waitNoGPUHeld(t)
	shot := filepath.Join(ArtifactsDir, "notebook6-python3-gpu.png")
	_ = os.Remove(shot)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	b := startBrowser(t, ctx, "notebook.mjs", nb.URL, nb.Token, shot)
	var res struct{ Notebook, Kernel, Output string }
	b.step(t, "", &res)
	assert.Equal(t, "42", res.Output)
	assert.Contains(t, res.Kernel, "1 GPU", "the notebook runs on the GPU kernelspec")
	st, err := os.Stat(shot)
	require.NoError(t, err, "the screenshot is kept")
	assert.Greater(t, st.Size(), int64(10000))
}

// TestJupyterLabSession is a user's session in stock JupyterLab 4 (the quick start's
// notebook server): click the GPU kernel's tile and run a cell at once, before the kernel is
// up: its output comes; interrupt a sleep; restart; close the tab and reopen the notebook:
// the same kernel answers, with its variables.
func TestJupyterLabSession(t *testing.T) {
	t.Cleanup(func() { shutDownKernels(t) })
	waitNoGPUHeld(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	b := startBrowser(t, ctx, "jupyterlab.mjs", env.NotebookBase, env.NotebookToken, ArtifactsDir, "session", gpuKernelName)
	var first struct {
		StatusAtRun     string
		SecondsToOutput float64
	}
	b.step(t, "first-cell", &first)
	// Whether the kernel was up by then depends on the machine; TestJupyterLabWaitsForAGPU
	// runs a cell while the kernel cannot be up.
	fmt.Printf("e2e: JupyterLab 4: a cell run at once on a new GPU kernel (status bar: %q) printed %.1f s later\n",
		first.StatusAtRun, first.SecondsToOutput)
	b.step(t, "interrupted", nil)
	b.step(t, "restarted", nil)
	var reopened struct{ Notebook, KernelBefore, KernelAfter string }
	b.step(t, "reopened", &reopened)
	require.NotEmpty(t, reopened.KernelBefore)
	assert.Equal(t, reopened.KernelBefore, reopened.KernelAfter, "the reopened notebook talks to the same kernel")
	_, ok := kernelCR(t, reopened.KernelAfter)
	assert.True(t, ok, "the kernel is a JupyterKernel behind the gateway")
}

// TestJupyterLabWaitsForAGPU: while every GPU is held, a notebook's cell run at once shows the
// wait in the page; once a GPU is freed, the cell runs.
func TestJupyterLabWaitsForAGPU(t *testing.T) {
	g := newGatewayClient(t)
	t.Cleanup(func() { shutDownKernels(t) })
	waitNoGPUHeld(t)
	holders := holdGPUs(t, g, cluster.Config().GPUs)

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	b := startBrowser(t, ctx, "jupyterlab.mjs", env.NotebookBase, env.NotebookToken, ArtifactsDir, "gpu-wait", gpuKernelName)
	var waiting struct{ Line, Status string }
	b.step(t, "waiting", &waiting)
	assert.Contains(t, waiting.Line, fmt.Sprintf("waiting for a GPU: 0 of %d nvidia.com/gpu free", cluster.Config().GPUs), "the page says what the kernel waits for")

	require.Equal(t, 204, g.api("DELETE", "/api/kernels/"+holders[0], nil, nil))
	_, err := io.WriteString(b.stdin, "freed\n")
	require.NoError(t, err)
	var ran struct{ SecondsAfterFree float64 }
	b.step(t, "ran", &ran)
	fmt.Printf("e2e: JupyterLab 4: the cell waiting for a GPU ran %.1f s after one was freed\n", ran.SecondsAfterFree)
}

// shutDownKernelsOf shuts down every kernel of the notebook server nb.
func shutDownKernelsOf(t *testing.T, nb *jupytertest.JupyterServer) {
	var list []map[string]any
	if jupytertest.API(t, "GET", nb.URL+"/api/kernels", nb.Token, nil, &list) != 200 {
		return
	}
	for _, k := range list {
		jupytertest.API(t, "DELETE", nb.URL+"/api/kernels/"+k["id"].(string), nb.Token, nil, nil)
	}
}

// TestJupyterLabGivesTheGPUBackWhileTheTabStaysOpen: a user runs x = 41 on a GPU kernel and
// leaves the tab open. Past the idle threshold the kernel is suspended: the GPU node's
// allocated GPUs drop, a second user's kernel waiting for a GPU gets it, and the page says the
// GPU was given back. The next cell, print(x + 1), prints 42 in a new pod, and the page says x
// was restored.
func TestJupyterLabGivesTheGPUBackWhileTheTabStaysOpen(t *testing.T) {
	g := newGatewayClient(t)
	t.Cleanup(func() { shutDownKernels(t) })
	saved := gatewaySpec(t)
	t.Cleanup(func() { restoreGatewaySpec(t, saved) })
	waitNoGPUHeld(t)
	gpus := cluster.Config().GPUs
	holdGPUs(t, g, gpus-1) // the notebook's kernel takes the last GPU
	patchGatewayJSON(t, `{"spec":{"cullIdleTimeout":10,"cullInterval":1}}`)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b := startBrowser(t, ctx, "jupyterlab.mjs", env.NotebookBase, env.NotebookToken, ArtifactsDir, "suspend", gpuKernelName)
	b.step(t, "ran", nil)
	mine := notebookKernel(t)
	before := runningKernelPod(t, mine)
	assert.Equal(t, gpus, allocatedGPUs(t), "every GPU is in use")

	// A second user asks for a GPU kernel: it waits, then gets the GPU given back.
	var other []string
	cleanUpKernels(t, g, &other)
	second := g.start("python3-gpu")
	other = append(other, second)
	ws, req := g.cellAtOnce(second, "print('the second user runs')")
	ws.WaitStderr(req, "waiting for a GPU", 2*time.Minute)

	var suspended struct{ Line string }
	b.step(t, "suspended", &suspended)
	assert.Contains(t, suspended.Line, "the GPU was given back; your next cell brings the kernel back with its variables")
	require.Eventually(t, func() bool { return len(kernelPods(t, mine)) == 0 }, time.Minute, 250*time.Millisecond, "the suspended kernel's pod is gone")
	k, _ := kernelCR(t, mine)
	assert.Equal(t, "Suspended", k.Status.Phase)
	assert.Zero(t, k.Status.GPUs, "its GPU is free")
	ex := ws.Collect(req, 3*time.Minute)
	assert.Equal(t, "the second user runs\n", ex.Stdout, "the second user's kernel got the GPU given back")
	require.Equal(t, 204, g.api("DELETE", "/api/kernels/"+second, nil, nil)) // and leaves

	_, err := io.WriteString(b.stdin, "come back\n")
	require.NoError(t, err)
	var resumed struct {
		Line            string
		SecondsToOutput float64
	}
	b.step(t, "resumed", &resumed)
	assert.Contains(t, resumed.Line, "resumed: restored 1 variable", "the page says what came back")
	assert.Contains(t, resumed.Line, ": x")
	after := runningKernelPod(t, mine)
	assert.NotEqual(t, before.UID, after.UID, "x + 1 ran in a new pod")
	fmt.Printf("e2e: JupyterLab 4: print(x + 1) on the suspended kernel printed 42 %.1f s later, in a new pod\n", resumed.SecondsToOutput)
}

// notebookKernel is the id of the quick start notebook server's only kernel.
func notebookKernel(t *testing.T) string {
	t.Helper()
	var list []map[string]any
	require.Equal(t, 200, jupytertest.API(t, "GET", env.NotebookBase+"/api/kernels", env.NotebookToken, nil, &list))
	require.Len(t, list, 1, "the notebook server has one kernel")
	return list[0]["id"].(string)
}

// allocatedGPUs is the number of GPUs the pods bound to the GPU node hold.
func allocatedGPUs(t *testing.T) int {
	t.Helper()
	var list corev1.PodList
	out := kubectl(t, "get", "pods", "-A", "--field-selector", "spec.nodeName="+cluster.Config().NodeName+"-gpu", "-o", "json")
	require.NoError(t, json.Unmarshal([]byte(out), &list))
	n := 0
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		for _, c := range p.Spec.Containers {
			q := c.Resources.Limits[gpuResource]
			n += int(q.Value())
		}
	}
	return n
}
