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
		out, err = kubectl("get", "pvc", "kernel-state", "-n", "team-vision", "-o", "jsonpath={.spec.accessModes[*]} {.spec.resources.requests.storage}")
		require.NoError(t, err, "the first install creates the team's state claim:\n%s", out)
		assert.Equal(t, "ReadWriteMany 50Gi", out)

		out, err = helmCmd(t, kubeconfig, "upgrade", release, chartDir, "-n", namespace, "-f", gpuTeam)
		require.NoError(t, err, out)
		out, err = kubectl("get", "jupytergateway", "gateway", "-n", "team-vision", "-o", "jsonpath={.spec.cullIdleTimeout}")
		require.NoError(t, err, out)
		assert.Equal(t, "1800", out, "the upgrade creates the team's gateway")
		out, err = kubectl("get", "jupyterkernelspecs", "-n", "team-vision", "-o", "name")
		require.NoError(t, err, out)
		assert.ElementsMatch(t, []string{"jupyterkernelspec.kubeflow.tkestack.io/python3-gpu", "jupyterkernelspec.kubeflow.tkestack.io/python3"}, strings.Fields(out))
		for _, ks := range []string{"python3-gpu", "python3"} {
			out, err = kubectl("get", "jupyterkernelspec", ks, "-n", "team-vision", "-o", "jsonpath={.spec.state.volume} {.spec.state.maxBytes}")
			require.NoError(t, err, out)
			assert.Equal(t, "kernel-state 1Gi", out, "%s keeps its variables on the team's claim", ks)
		}
		out, err = kubectl("get", "jupytergateway", "gateway", "-n", "team-vision", "-o", "jsonpath={.spec.cullPolicy} cullConnected={.spec.cullConnected}")
		require.NoError(t, err, out)
		assert.Equal(t, "Suspend cullConnected=", out, "cullConnected is left to the gateway's default for Suspend")

		out, err = helmCmd(t, kubeconfig, "upgrade", release, chartDir, "-n", namespace, "-f", gpuTeam, "--set", "teams[0].gateway.cullIdleTimeout=600")
		require.NoError(t, err, out)
		assert.Contains(t, out, "idle kernels are suspended after 600 s.", "the notes give the team's timeout")
		assert.Contains(t, out, "Kernels whose tab is still open are suspended too (cullConnected)")
		assert.Contains(t, out, "Suspended kernels keep their variables on claim kernel-state in team-vision (kept on uninstall).")
		assert.NotContains(t, out, "WARNING")
		// The notes warn of a team whose state cannot work as it says.
		// (Not in t.TempDir(): helm reads commas in -f as separators, and the subtest's name has some.)
		notes := filepath.Join(env.Dir, "notes-values.yaml")
		require.NoError(t, os.WriteFile(notes, []byte(`
teams:
  - {name: nostate, namespaces: [team-nostate], gateway: {cullPolicy: Suspend}}
  - {name: deletes, namespaces: [team-deletes], gateway: {cullPolicy: Delete}, state: {enabled: true}}
  - {name: existing, namespaces: [team-existing], gateway: {cullConnected: false}, state: {enabled: true, create: false, claimName: vars}}
`), 0o644))
		out, err = helmCmd(t, kubeconfig, "upgrade", release, chartDir, "-n", namespace, "--dry-run=server", "-f", notes)
		require.NoError(t, err, out)
		assert.Contains(t, out, "WARNING: team nostate has no state, so a suspended kernel comes back without its variables, even one whose tab was left open")
		assert.Contains(t, out, "WARNING: team deletes has state but cullPolicy Delete")
		assert.Contains(t, out, "Suspended kernels keep their variables on claim vars in team-existing, which must exist (state.create: false)")
		assert.Equal(t, 1, strings.Count(out, "Kernels whose tab is still open"), "only team nostate culls connected kernels:\n%s", out)
		assert.NotContains(t, out, "kind: PersistentVolumeClaim\nmetadata:\n  name: vars", "state.create: false renders no claim")
		out, err = kubectl("get", "jupytergateway", "gateway", "-n", "team-vision", "-o", "jsonpath={.spec.cullIdleTimeout}")
		require.NoError(t, err, out)
		assert.Equal(t, "600", out, "an upgrade changes the team's cull settings in place")
		out, err = helmCmd(t, kubeconfig, "upgrade", release, chartDir, "-n", namespace, "-f", gpuTeam, "--set", "teams[0].gateway.cullIdleTimeout=0")
		require.NoError(t, err, out)
		assert.Contains(t, out, "idle kernels are never culled", "the notes read cullIdleTimeout: 0 as never, not after 0 s")
		assert.NotContains(t, out, "Kernels whose tab is still open", "a kernel never culled is not culled with its tab open either")
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
		out, err = kubectl("get", "pvc", "kernel-state", "-n", "team-vision", "-o", "name")
		require.NoError(t, err, "the team's state claim, with its users' saved variables, stays:\n%s", out)

		// Installed again, the release takes back what it kept.
		out, err = helmCmd(t, kubeconfig, "install", release, chartDir, "-n", namespace, "-f", gpuTeam)
		require.NoError(t, err, "a new install adopts the kept namespace and claim:\n%s", out)
		out, err = helmCmd(t, kubeconfig, "uninstall", release, "-n", namespace, "--wait")
		require.NoError(t, err, out)
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
		// A claim's spec is immutable and values files give the same claim different specs; with no
		// kube-controller-manager to release its pvc-protection finalizer, each file's claims are
		// removed by hand before the next file is applied.
		removeClaims := func(t *testing.T) {
			out, err := kubectl("get", "pvc", "-A", "-o", `jsonpath={range .items[*]}{.metadata.namespace} {.metadata.name}{"\n"}{end}`)
			require.NoError(t, err, out)
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				ns, name, ok := strings.Cut(line, " ")
				if !ok {
					continue
				}
				out, err := kubectl("patch", "pvc", name, "-n", ns, "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
				require.NoError(t, err, out)
				out, err = kubectl("delete", "pvc", name, "-n", ns, "--wait")
				require.NoError(t, err, out)
			}
		}
		for name, files := range cases {
			removeClaims(t)
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
