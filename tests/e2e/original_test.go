package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// TestOriginalQuickStart applies the original project's two manifests as written and finds the
// Deployments and Services it made, named as the original made them.
func TestOriginalQuickStart(t *testing.T) {
	kubectl(t, "apply", "-n", "default", "-f", filepath.Join(testenv.RepoRoot(), "examples", "original"))
	defer kubectl(t, "delete", "-n", "default", "--wait=false", "-f", filepath.Join(testenv.RepoRoot(), "examples", "original"))
	for _, name := range []string{"jupyternotebook-elastic", "jupytergateway-elastic"} {
		require.Eventually(t, func() bool {
			out := kubectl(t, "-n", "default", "get", "deployments,services", "-o", "name")
			return strings.Contains(out, "deployment.apps/"+name) && strings.Contains(out, "service/"+name)
		}, 2*time.Minute, 500*time.Millisecond, "%s's Deployment and Service", name)
	}
	args := kubectl(t, "-n", "default", "get", "deployment", "jupyternotebook-elastic", "-o", "jsonpath={.spec.template.spec.containers[0].env}")
	assert.Contains(t, args, "http://jupytergateway-elastic.default.svc:8888", "the notebook is pointed at the gateway")
}
