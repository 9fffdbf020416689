// Package verify checks that `make verify` (hack/verify.sh) catches generated files that drift
// from their sources.
package verify

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// copyTree copies the parts of the repository hack/verify.sh reads into a temporary directory.
func copyTree(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	root := testenv.RepoRoot()
	for _, p := range []string{"go.mod", "go.sum", "api", "controller", "internal", "crds", "hack", "config", "charts"} {
		if _, err := os.Stat(filepath.Join(root, p)); os.IsNotExist(err) {
			continue
		}
		out, err := exec.Command("cp", "-r", filepath.Join(root, p), dst).CombinedOutput()
		require.NoError(t, err, string(out))
	}
	return dst
}

func verify(t *testing.T, dir string) (string, error) {
	t.Helper()
	_, err := testenv.Binary("controller-gen")
	require.NoError(t, err)
	cmd := exec.Command(filepath.Join(dir, "hack", "verify.sh"), dir)
	cmd.Env = append(os.Environ(), "ELASTIC_JUPYTER_CACHE="+testenv.CacheDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestVerifyPassesOnACleanTree(t *testing.T) {
	out, err := verify(t, copyTree(t))
	require.NoError(t, err, out)
	assert.Contains(t, out, "up to date")
}

func TestVerifyFailsOnAHandEditedCRD(t *testing.T) {
	dir := copyTree(t)
	crd := filepath.Join(dir, "crds", "kubeflow.tkestack.io_jupytergateways.yaml")
	data, err := os.ReadFile(crd)
	require.NoError(t, err)
	edited := strings.Replace(string(data), "- Delete\n", "- Delete\n                - Pause\n", 1)
	require.NotEqual(t, string(data), edited, "the edit applies")
	require.NoError(t, os.WriteFile(crd, []byte(edited), 0o644))

	out, err := verify(t, dir)
	require.Error(t, err, out)
	assert.Contains(t, out, "crds/ is out of date or was edited by hand")
	assert.Contains(t, out, "Pause")
}

func TestVerifyFailsOnAHandEditedDeepCopy(t *testing.T) {
	dir := copyTree(t)
	f := filepath.Join(dir, "api", "v1alpha1", "zz_generated.deepcopy.go")
	data, err := os.ReadFile(f)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(f, append(data, []byte("\n// hand edit\n")...), 0o644))

	out, err := verify(t, dir)
	require.Error(t, err, out)
	assert.Contains(t, out, "generated code in api/ is out of date")
}
