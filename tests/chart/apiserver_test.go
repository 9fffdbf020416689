package chart

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// certManagerCRDs is the directory of cert-manager's plain CRD manifests in its Go module.
func certManagerCRDs(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", "github.com/cert-manager/cert-manager@v1.21.2").Output()
	require.NoError(t, err, "downloading the cert-manager module")
	var mod struct{ Dir string }
	require.NoError(t, json.Unmarshal(out, &mod))
	dir := filepath.Join(mod.Dir, "deploy", "crds")
	_, err = os.Stat(filepath.Join(dir, "cert-manager.io_certificates.yaml"))
	require.NoError(t, err)
	return dir
}

// The chart against a real API server: installed, upgraded and uninstalled by helm, and every
// values file applied server-side (cert-manager's CRDs installed, so its Issuer and Certificate
// are validated too).
func TestChartOnTheAPIServer(t *testing.T) {
	env, err := testenv.Start(testenv.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	kubeconfig := []string{"KUBECONFIG=" + env.Kubeconfig}
	kubectl := func(args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(testenv.BinDir(), "kubectl"), args...)
		cmd.Env = append(os.Environ(), kubeconfig...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := kubectl("apply", "--server-side", "-f", certManagerCRDs(t))
	require.NoError(t, err, out)
	// A cluster that has never seen elastic-jupyter: the test environment's CRDs go.
	out, err = kubectl("delete", "-f", filepath.Join(testenv.RepoRoot(), "crds"), "--wait")
	require.NoError(t, err, out)
	out, err = kubectl("get", "crd", "-o", "name")
	require.NoError(t, err, out)
	require.NotContains(t, out, "kubeflow.tkestack.io", "the cluster starts without our CRDs")
	require.Contains(t, out, "certificates.cert-manager.io")

	gpuTeam := filepath.Join(valuesDir, "gpu-team.yaml")
	t.Run("helm install, upgrade, uninstall", func(t *testing.T) {
		out, err := helmCmd(t, kubeconfig, "install", release, chartDir, "-n", namespace, "--create-namespace", "-f", gpuTeam)
		require.NoError(t, err, out)
		assert.Contains(t, out, "helm upgrade", "the notes say how to create the teams' objects")
		out, err = kubectl("get", "crd/jupytergateways.kubeflow.tkestack.io", "deploy/ej-elastic-jupyter-controller", "deploy/ej-elastic-jupyter-webhook", "-n", namespace, "-o", "name")
		require.NoError(t, err, out)
		assert.Contains(t, out, "deployment.apps/ej-elastic-jupyter-controller")
		assert.Contains(t, out, "deployment.apps/ej-elastic-jupyter-webhook")

		out, err = helmCmd(t, kubeconfig, "upgrade", release, chartDir, "-n", namespace, "-f", gpuTeam)
		require.NoError(t, err, out)
		out, err = kubectl("get", "jupytergateway", "gateway", "-n", "team-vision", "-o", "jsonpath={.spec.cullIdleTimeout}")
		require.NoError(t, err, out)
		assert.Equal(t, "1800", out, "the upgrade creates the team's gateway")
		out, err = kubectl("get", "jupyterkernelspecs", "-n", "team-vision", "-o", "name")
		require.NoError(t, err, out)
		assert.ElementsMatch(t, []string{"jupyterkernelspec.kubeflow.tkestack.io/python3-gpu", "jupyterkernelspec.kubeflow.tkestack.io/python3"}, strings.Fields(out))

		out, err = helmCmd(t, kubeconfig, "upgrade", release, chartDir, "-n", namespace, "-f", gpuTeam, "--set", "teams[0].gateway.cullIdleTimeout=600")
		require.NoError(t, err, out)
		assert.Contains(t, out, "idle kernels are suspended after 600 s.", "the notes give the team's timeout")
		out, err = kubectl("get", "jupytergateway", "gateway", "-n", "team-vision", "-o", "jsonpath={.spec.cullIdleTimeout}")
		require.NoError(t, err, out)
		assert.Equal(t, "600", out, "an upgrade changes the team's cull settings in place")
		out, err = helmCmd(t, kubeconfig, "upgrade", release, chartDir, "-n", namespace, "-f", gpuTeam, "--set", "teams[0].gateway.cullIdleTimeout=0")
		require.NoError(t, err, out)
		assert.Contains(t, out, "idle kernels are never culled", "the notes read cullIdleTimeout: 0 as never, not after 0 s")
		out, err = kubectl("get", "jupytergateway", "gateway", "-n", "team-vision", "-o", "jsonpath={.spec.cullIdleTimeout}")
		require.NoError(t, err, out)
		assert.Equal(t, "0", out, "cullIdleTimeout: 0 reaches the gateway")
		out, err = kubectl("get", "jupyterkernelspec", "python3", "-n", "team-vision", "-o", "jsonpath={.spec.resources.gpus}")
		require.NoError(t, err, out)
		assert.Equal(t, "0", out, "gpu-team's CPU kernelspec keeps its gpus: 0 on the API server")
		out, err = kubectl("get", "configmap", "elastic-jupyter-policy", "-n", namespace, "-o", "jsonpath={.data.policy\\.yaml}")
		require.NoError(t, err, out)
		assert.Contains(t, out, "team-vision")

		out, err = helmCmd(t, kubeconfig, "uninstall", release, "-n", namespace, "--wait")
		require.NoError(t, err, out)
		out, err = kubectl("get", "crd", "-o", "name")
		require.NoError(t, err, out)
		assert.Contains(t, out, "jupytergateways.kubeflow.tkestack.io", "the CRDs stay on uninstall")
		out, err = kubectl("get", "deploy,jupytergateways", "-A", "-o", "name")
		require.NoError(t, err, out)
		assert.NotContains(t, out, "ej-elastic-jupyter", "the release's workloads go")
		assert.NotContains(t, out, "jupytergateway", "the release's gateways go")
		out, err = kubectl("get", "namespace", "team-vision", "-o", "jsonpath={.status.phase}")
		require.NoError(t, err, out)
		assert.Equal(t, "Active", out, "the team's namespace, with its users' notebooks, stays")
	})

	t.Run("server-side apply of every values file", func(t *testing.T) {
		out, err := kubectl("create", "namespace", namespace)
		if err != nil {
			require.Contains(t, out, "AlreadyExists")
		}
		cases := map[string][]string{"defaults": nil}
		for _, f := range valuesFiles(t) {
			cases[filepath.Base(f)] = []string{f}
		}
		for name, files := range cases {
			for _, cm := range []string{"true", "false"} {
				manifest := render(t, files, map[string]string{"certManager.enabled": cm})
				file := filepath.Join(t.TempDir(), "rendered.yaml")
				require.NoError(t, os.WriteFile(file, []byte(manifest), 0o644))
				out, err := kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=chart-test", "-f", file)
				require.NoError(t, err, "%s (certManager.enabled=%s):\n%s", name, cm, out)
				applied := strings.Count(out, " serverside-applied")
				assert.Equal(t, len(objects(t, manifest)), applied, "%s (certManager.enabled=%s): every object is accepted:\n%s", name, cm, out)
			}
		}
	})
}
