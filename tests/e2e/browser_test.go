package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// TestBrowserRunsACellOnAGPUKernel opens the notebook server in headless Chromium, creates a
// notebook on python3-gpu, runs print(6*7) and sees 42 in the page.
func TestBrowserRunsACellOnAGPUKernel(t *testing.T) {
	t.Cleanup(func() { shutDownKernels(t) })
	require.NoError(t, os.MkdirAll(ArtifactsDir, 0o755))
	shot := filepath.Join(ArtifactsDir, "notebook-python3-gpu.png")
	_ = os.Remove(shot)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(testenv.RepoRoot(), "tests", "e2e", "browser", "notebook.mjs"),
		env.NotebookBase, env.NotebookToken, shot)
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(testenv.CacheDir(), "node", "node_modules"))
	out, err := cmd.Output()
	var stderr string
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = string(ee.Stderr)
	}
	require.NoError(t, err, "browser: %s\n%s", out, stderr)
	var res struct{ Notebook, Kernel, Output string }
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(string(out))), &res), string(out))
	assert.Equal(t, "42", res.Output)
	assert.Contains(t, res.Kernel, "1 GPU", "the notebook runs on the GPU kernelspec")
	st, err := os.Stat(shot)
	require.NoError(t, err, "the screenshot is kept")
	assert.Greater(t, st.Size(), int64(10000))
	t.Logf("screenshot: %s", shot)
}
