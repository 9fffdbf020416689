package chart

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/logger"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

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
// are validated too), with terratest's helm and k8s modules.
func TestChartOnTheAPIServer(t *testing.T) {
	env, err := testenv.Start(testenv.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	// in are the kubectl options of the API server in namespace ns ("": every namespace).
	in := func(ns string) *k8s.KubectlOptions {
		o := k8s.NewKubectlOptions("", env.Kubeconfig, ns)
		o.Logger = logger.Discard
		return o
	}
	kubectl := func(args ...string) (string, error) { return k8s.RunKubectlAndGetOutputE(t, in(""), args...) }
	out, err := kubectl("apply", "--server-side", "-f", certManagerCRDs(t))
	require.NoError(t, err, out)
	// A cluster that has never seen elastic-jupyter: the test environment's CRDs go.
	require.NoError(t, k8s.KubectlDeleteE(t, in(""), filepath.Join(testenv.RepoRoot(), "crds")))
	out, err = kubectl("get", "crd", "-o", "name")
	require.NoError(t, err, out)
	require.NotContains(t, out, "kubeflow.tkestack.io", "the cluster starts without our CRDs")
	require.Contains(t, out, "certificates.cert-manager.io")

	gpuTeam := filepath.Join(valuesDir, "gpu-team.yaml")
	// releaseOptions are the helm options of the release with gpu-team.yaml and the --set values
	// given; extra are extra arguments by helm command (install, upgrade, delete).
	releaseOptions := func(set map[string]string, extra map[string][]string) *helm.Options {
		return &helm.Options{
			KubectlOptions: in(namespace),
			ValuesFiles:    []string{gpuTeam},
			SetValues:      set,
			ExtraArgs:      extra,
			Logger:         logger.Discard,
		}
	}
	// notes are the release's notes, as helm install and upgrade print them.
	notes := func(t *testing.T) string {
		t.Helper()
		out, err := helm.RunHelmCommandAndGetOutputE(t, releaseOptions(nil, nil), "get", "notes", release)
		require.NoError(t, err, out)
		return out
	}
	uninstall := releaseOptions(nil, map[string][]string{"delete": {"--wait"}})
	// vision is a field of an object of team vision, by jsonpath.
	vision := func(t *testing.T, object, jsonpath string) string {
		t.Helper()
		out, err := k8s.RunKubectlAndGetOutputE(t, in("team-vision"), "get", object, "-o", "jsonpath="+jsonpath)
		require.NoError(t, err, out)
		return out
	}
	t.Run("helm install, upgrade, uninstall", func(t *testing.T) {
		require.NoError(t, helm.InstallE(t, releaseOptions(nil, map[string][]string{"install": {"--create-namespace"}}), chartDir, release))
		assert.Contains(t, notes(t), "helm upgrade", "the notes say how to create the teams' objects")
		out, err := kubectl("get", "crd/jupytergateways.kubeflow.tkestack.io", "-o", "name")
		require.NoError(t, err, out)
		for _, d := range []string{"ej-elastic-jupyter-controller", "ej-elastic-jupyter-webhook"} {
			_, err := k8s.GetDeploymentE(t, in(namespace), d)
			assert.NoError(t, err, "deployment %s", d)
		}
		pvc, err := k8s.GetPersistentVolumeClaimE(t, in("team-vision"), "kernel-state")
		require.NoError(t, err, "the first install creates the team's state claim")
		assert.Equal(t, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}, pvc.Spec.AccessModes)
		assert.Equal(t, "50Gi", ptr.To(pvc.Spec.Resources.Requests[corev1.ResourceStorage]).String())

		require.NoError(t, helm.UpgradeE(t, releaseOptions(nil, nil), chartDir, release))
		assert.Equal(t, "1800", vision(t, "jupytergateway/gateway", "{.spec.cullIdleTimeout}"), "the upgrade creates the team's gateway")
		out, err = kubectl("get", "jupyterkernelspecs", "-n", "team-vision", "-o", "name")
		require.NoError(t, err, out)
		assert.ElementsMatch(t, []string{"jupyterkernelspec.kubeflow.tkestack.io/python3-gpu", "jupyterkernelspec.kubeflow.tkestack.io/python3"}, strings.Fields(out))
		for _, ks := range []string{"python3-gpu", "python3"} {
			assert.Equal(t, "kernel-state 1Gi", vision(t, "jupyterkernelspec/"+ks, "{.spec.state.volume} {.spec.state.maxBytes}"), "%s keeps its variables on the team's claim", ks)
		}
		assert.Equal(t, "Suspend cullConnected=", vision(t, "jupytergateway/gateway", "{.spec.cullPolicy} cullConnected={.spec.cullConnected}"), "cullConnected is left to the gateway's default for Suspend")

		require.NoError(t, helm.UpgradeE(t, releaseOptions(map[string]string{"teams[0].gateway.cullIdleTimeout": "600"}, nil), chartDir, release))
		out = notes(t)
		assert.Contains(t, out, "idle kernels are suspended after 600 s.", "the notes give the team's timeout")
		assert.Contains(t, out, "Kernels whose tab is still open are suspended too (cullConnected)")
		assert.Contains(t, out, "Suspended kernels keep their variables on claim kernel-state in team-vision (kept on uninstall).")
		assert.NotContains(t, out, "WARNING")
		// The notes warn of a team whose state cannot work as it says.
		// (Not in t.TempDir(): helm reads commas in -f as separators, and the subtest's name has some.)
		warned := filepath.Join(env.Dir, "notes-values.yaml")
		require.NoError(t, os.WriteFile(warned, []byte(`
teams:
  - {name: nostate, namespaces: [team-nostate], gateway: {cullPolicy: Suspend}}
  - {name: deletes, namespaces: [team-deletes], gateway: {cullPolicy: Delete}, state: {enabled: true}}
  - {name: existing, namespaces: [team-existing], gateway: {cullConnected: false}, state: {enabled: true, create: false, claimName: vars}}
`), 0o644))
		// A dry run keeps no release to read the notes of: they are in its output.
		dryRun := &helm.Options{KubectlOptions: in(namespace), Logger: logger.Discard}
		out, err = helm.RunHelmCommandAndGetOutputE(t, dryRun, "upgrade", "--dry-run=server", "-f", warned, release, chartDir)
		require.NoError(t, err, out)
		assert.Contains(t, out, "WARNING: team nostate has no state, so a suspended kernel comes back without its variables, even one whose tab was left open")
		assert.Contains(t, out, "WARNING: team deletes has state but cullPolicy Delete")
		assert.Contains(t, out, "Suspended kernels keep their variables on claim vars in team-existing, which must exist (state.create: false)")
		assert.Equal(t, 1, strings.Count(out, "Kernels whose tab is still open"), "only team nostate culls connected kernels:\n%s", out)
		assert.NotContains(t, out, "kind: PersistentVolumeClaim\nmetadata:\n  name: vars", "state.create: false renders no claim")
		assert.Equal(t, "600", vision(t, "jupytergateway/gateway", "{.spec.cullIdleTimeout}"), "an upgrade changes the team's cull settings in place")
		require.NoError(t, helm.UpgradeE(t, releaseOptions(map[string]string{"teams[0].gateway.cullIdleTimeout": "0"}, nil), chartDir, release))
		out = notes(t)
		assert.Contains(t, out, "idle kernels are never culled", "the notes read cullIdleTimeout: 0 as never, not after 0 s")
		assert.NotContains(t, out, "Kernels whose tab is still open", "a kernel never culled is not culled with its tab open either")
		assert.Equal(t, "0", vision(t, "jupytergateway/gateway", "{.spec.cullIdleTimeout}"), "cullIdleTimeout: 0 reaches the gateway")
		assert.Equal(t, "0", vision(t, "jupyterkernelspec/python3", "{.spec.resources.gpus}"), "gpu-team's CPU kernelspec keeps its gpus: 0 on the API server")
		policy, err := k8s.GetConfigMapE(t, in(namespace), "elastic-jupyter-policy")
		require.NoError(t, err)
		assert.Contains(t, policy.Data["policy.yaml"], "team-vision")

		require.NoError(t, helm.DeleteE(t, uninstall, release, true))
		out, err = kubectl("get", "crd", "-o", "name")
		require.NoError(t, err, out)
		assert.Contains(t, out, "jupytergateways.kubeflow.tkestack.io", "the CRDs stay on uninstall")
		deployments, err := k8s.ListDeploymentsE(t, in(""), metav1.ListOptions{})
		require.NoError(t, err)
		for _, d := range deployments {
			assert.NotContains(t, d.Name, "ej-elastic-jupyter", "the release's workloads go")
		}
		out, err = kubectl("get", "jupytergateways", "-A", "-o", "name")
		require.NoError(t, err, out)
		assert.NotContains(t, out, "jupytergateway", "the release's gateways go")
		ns, err := k8s.GetNamespaceE(t, in(""), "team-vision")
		require.NoError(t, err)
		assert.Equal(t, corev1.NamespaceActive, ns.Status.Phase, "the team's namespace, with its users' notebooks, stays")
		_, err = k8s.GetPersistentVolumeClaimE(t, in("team-vision"), "kernel-state")
		require.NoError(t, err, "the team's state claim, with its users' saved variables, stays")

		// Installed again, the release takes back what it kept.
		require.NoError(t, helm.InstallE(t, releaseOptions(nil, nil), chartDir, release), "a new install adopts the kept namespace and claim")
		require.NoError(t, helm.DeleteE(t, uninstall, release, true))
	})

	t.Run("server-side apply of every values file", func(t *testing.T) {
		if err := k8s.CreateNamespaceE(t, in(""), namespace); err != nil {
			require.True(t, apierrors.IsAlreadyExists(err), err)
		}
		cases := map[string][]string{"defaults": nil}
		for _, f := range valuesFiles(t) {
			cases[filepath.Base(f)] = []string{f}
		}
		// A claim's spec is immutable and values files give the same claim different specs; with no
		// kube-controller-manager to release its pvc-protection finalizer, each file's claims are
		// removed by hand before the next file is applied.
		removeClaims := func(t *testing.T) {
			claims, err := k8s.ListPersistentVolumeClaimsE(t, in(""), metav1.ListOptions{})
			require.NoError(t, err)
			for _, c := range claims {
				out, err := k8s.RunKubectlAndGetOutputE(t, in(c.Namespace), "patch", "pvc", c.Name, "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
				require.NoError(t, err, out)
				out, err = k8s.RunKubectlAndGetOutputE(t, in(c.Namespace), "delete", "pvc", c.Name, "--wait")
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
