package rootfs

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Dir and `hack/rootfs.sh --path` agree, with and without ELASTIC_JUPYTER_CACHE.
func TestDirIsWhereTheScriptBuilds(t *testing.T) {
	for _, cache := range []string{"", t.TempDir()} {
		home := t.TempDir()
		t.Setenv("HOME", home)
		t.Setenv("ELASTIC_JUPYTER_CACHE", cache)
		out, err := exec.Command("bash", filepath.Join(repoRoot(), "hack", "rootfs.sh"), "--path").Output()
		require.NoError(t, err)
		assert.Equal(t, strings.TrimSpace(string(out)), Dir(), "ELASTIC_JUPYTER_CACHE=%q", cache)
	}
}

func TestCheckNamesTheScript(t *testing.T) {
	err := Check(filepath.Join(t.TempDir(), Name))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hack/rootfs.sh")
}
