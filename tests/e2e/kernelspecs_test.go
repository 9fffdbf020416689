package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/devcluster"
)

const tinyLogo = `<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle cx="32" cy="32" r="30" fill="#f37726"/></svg>`

// tinySpec is the kernelspec "tiny" with a display name and image.
func tinySpec(display, image string) string {
	return fmt.Sprintf(`apiVersion: kubeflow.tkestack.io/v1alpha1
kind: JupyterKernelSpec
metadata: {name: tiny, namespace: %s}
spec:
  displayName: %q
  language: python
  image: %s
  command: ["python3", "-m", "ipykernel_launcher", "-f", "{connection_file}"]
  resources: {cpu: 100m, memory: 256Mi}
  logo:
    svg: '%s'
`, devcluster.TeamNamespace, display, image, tinyLogo)
}

// offered returns the gateway's kernelspecs' display names by name.
func (g *gatewayClient) offered() map[string]string {
	g.t.Helper()
	var specs struct {
		Kernelspecs map[string]struct {
			Spec struct {
				DisplayName string `json:"display_name"`
			}
			Resources map[string]string
		}
	}
	require.Equal(g.t, http.StatusOK, g.api("GET", "/api/kernelspecs", nil, &specs))
	out := map[string]string{}
	for n, s := range specs.Kernelspecs {
		out[n] = s.Spec.DisplayName
	}
	return out
}

// kernelImage is the image of kernel id's pod's kernel container.
func kernelImage(t *testing.T, id string) string {
	t.Helper()
	pod := runningKernelPod(t, id)
	for _, c := range pod.Spec.Containers {
		if c.Name == "kernel" {
			return c.Image
		}
	}
	return ""
}

// TestKernelspecsChangeLive: a team adds a kernel to its running notebooks by creating a
// kernelspec and naming it in the gateway's kernels; it is offered at once (JupyterLab's
// launcher shows its tile and logo after a reload) and a kernel of it runs a cell; an edit of
// its display name and image shows in the list and the next kernel runs the new image (the
// running one keeps its own); deleted, it is withdrawn, a start of it is refused naming it, and
// the gateway says it names a kernelspec that does not exist. The gateway is never restarted.
func TestKernelspecsChangeLive(t *testing.T) {
	g := newGatewayClient(t)
	var started []string
	cleanUpKernels(t, g, &started)
	saved := gatewaySpec(t)
	t.Cleanup(func() {
		kubectl(t, "-n", devcluster.TeamNamespace, "delete", "jupyterkernelspec", "tiny", "--ignore-not-found")
		restoreGatewaySpec(t, saved)
	})
	gwUID := readyGatewayPod(t, "")

	kubectlApply(t, tinySpec("Tiny Python", "quay.io/jupyter/base-notebook:2024-10-07"))
	added := time.Now()
	patchGatewayJSON(t, `{"spec":{"kernels":["python3","python3-gpu","tiny"]}}`)
	require.Eventually(t, func() bool { return g.offered()["tiny"] == "Tiny Python" }, 30*time.Second, 50*time.Millisecond, "the new kernelspec is offered")
	fmt.Printf("e2e: a new kernelspec was offered %s after it was named in the gateway's kernels\n", time.Since(added).Round(10*time.Millisecond))

	req, err := http.NewRequest("GET", env.GatewayURL+"/kernelspecs/tiny/logo-svg.svg", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "token "+g.token)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	logo, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, tinyLogo, string(logo), "its logo is served where Jupyter looks for it")
	assert.Equal(t, "image/svg+xml", resp.Header.Get("Content-Type"))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	b := startBrowser(t, ctx, "jupyterlab.mjs", env.NotebookBase, env.NotebookToken, ArtifactsDir, "tile", "Tiny Python")
	var tile struct{ Icon string }
	b.step(t, "tile", &tile)
	assert.Contains(t, tile.Icon, "/kernelspecs/tiny/logo-svg.svg", "the launcher's tile shows the kernel's logo")

	first := g.start("tiny")
	started = append(started, first)
	ex := g.executeFirst(first, "import sys; print(sys.version_info[:2])", 3*time.Minute)
	require.Equal(t, "ok", ex.Status, ex.EValue)
	assert.Equal(t, "(3, 13)\n", ex.Stdout, "a kernel of the new kernelspec runs, on its image (Debian 13's Python)")

	// Edited: another display name and image (an image devnode runs on the host's Debian 12).
	kubectlApply(t, tinySpec("Tiny Python (host)", "example.com/host-python:1"))
	require.Eventually(t, func() bool { return g.offered()["tiny"] == "Tiny Python (host)" }, 30*time.Second, 50*time.Millisecond, "the edit is offered")
	second := g.start("tiny")
	started = append(started, second)
	ex = g.executeFirst(second, "import sys; print(sys.version_info[:2])", 3*time.Minute)
	require.Equal(t, "ok", ex.Status, ex.EValue)
	assert.Equal(t, "(3, 11)\n", ex.Stdout, "the next kernel runs the new image")
	assert.Equal(t, "example.com/host-python:1", kernelImage(t, second))
	assert.Equal(t, "quay.io/jupyter/base-notebook:2024-10-07", kernelImage(t, first), "the running kernel keeps the spec it started with")

	// Deleted: withdrawn, and a start of it is refused, naming it.
	kubectl(t, "-n", devcluster.TeamNamespace, "delete", "jupyterkernelspec", "tiny")
	require.Eventually(t, func() bool { _, still := g.offered()["tiny"]; return !still }, 30*time.Second, 50*time.Millisecond, "the deleted kernelspec is withdrawn")
	var e map[string]any
	require.Equal(t, http.StatusNotFound, g.api("POST", "/api/kernels", map[string]any{"name": "tiny"}, &e))
	assert.Contains(t, e["message"], `no such kernelspec "tiny"`)
	require.Eventually(t, func() bool {
		out := kubectl(t, "-n", devcluster.TeamNamespace, "get", "jupytergateway", devcluster.GatewayName,
			"-o", `jsonpath={.status.conditions[?(@.type=="KernelSpecsFound")].status} {.status.conditions[?(@.type=="KernelSpecsFound")].message}`)
		return strings.HasPrefix(out, "False") && strings.Contains(out, "JupyterKernelSpec tiny not found")
	}, time.Minute, 250*time.Millisecond, "the gateway's status names the kernelspec it cannot find")
	assert.Equal(t, gwUID, readyGatewayPod(t, ""), "the gateway was never restarted")
}
