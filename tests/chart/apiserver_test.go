package chart

import (
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/logger"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/controller"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// moduleDir is the directory of a Go module version in the module cache, downloaded if need be:
// the CRDs of cert-manager and of the Prometheus Operator come from their modules.
func moduleDir(t *testing.T, module string) string {
	t.Helper()
	out, err := exec.Command("go", "mod", "download", "-json", module).Output()
	require.NoError(t, err, "downloading %s", module)
	var mod struct{ Dir string }
	require.NoError(t, json.Unmarshal(out, &mod))
	return mod.Dir
}

// certManagerCRDs is the directory of cert-manager's plain CRD manifests in its Go module.
func certManagerCRDs(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(moduleDir(t, "github.com/cert-manager/cert-manager@v1.21.2"), "deploy", "crds")
	_, err := os.Stat(filepath.Join(dir, "cert-manager.io_certificates.yaml"))
	require.NoError(t, err)
	return dir
}

// serviceMonitorCRD is the Prometheus Operator's ServiceMonitor CRD, from its Go module.
func serviceMonitorCRD(t *testing.T) string {
	t.Helper()
	f := filepath.Join(moduleDir(t, "github.com/prometheus-operator/prometheus-operator@v0.85.0"),
		"example", "prometheus-operator-crd", "monitoring.coreos.com_servicemonitors.yaml")
	_, err := os.Stat(f)
	require.NoError(t, err)
	return f
}

// kubectlOptions are terratest's kubectl options for env's API server in namespace ns (""
// for every namespace), with its logging off: what kubectl says is returned, and in errors.
func kubectlOptions(env *testenv.Env, ns string) *k8s.KubectlOptions {
	o := k8s.NewKubectlOptions("", env.Kubeconfig, ns)
	o.Logger = logger.Discard
	return o
}

// The chart against a real API server: installed, upgraded and uninstalled by helm, and every
// values file applied server-side (cert-manager's and the ServiceMonitor CRDs installed, so its
// Issuer, Certificate and ServiceMonitors are validated too), with terratest's helm and k8s
// modules.
func TestChartOnTheAPIServer(t *testing.T) {
	env, err := testenv.Start(testenv.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	in := func(ns string) *k8s.KubectlOptions { return kubectlOptions(env, ns) }
	kubectl := func(t *testing.T, args ...string) (string, error) {
		return k8s.RunKubectlAndGetOutputE(t, in(""), args...)
	}
	out, err := kubectl(t, "apply", "--server-side", "-f", certManagerCRDs(t), "-f", serviceMonitorCRD(t))
	require.NoError(t, err, out)
	// A cluster that has never seen elastic-jupyter: the test environment's CRDs go.
	require.NoError(t, k8s.KubectlDeleteE(t, in(""), filepath.Join(testenv.RepoRoot(), "crds")))
	out, err = kubectl(t, "get", "crd", "-o", "name")
	require.NoError(t, err, out)
	require.NotContains(t, out, "kubeflow.tkestack.io", "the cluster starts without our CRDs")
	require.Contains(t, out, "certificates.cert-manager.io")
	require.Contains(t, out, "servicemonitors.monitoring.coreos.com")

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
		out, err := kubectl(t, "get", "crd/jupytergateways.kubeflow.tkestack.io", "-o", "name")
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
		out, err = kubectl(t, "get", "jupyterkernelspecs", "-n", "team-vision", "-o", "name")
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
		out, err = kubectl(t, "get", "crd", "-o", "name")
		require.NoError(t, err, out)
		assert.Contains(t, out, "jupytergateways.kubeflow.tkestack.io", "the CRDs stay on uninstall")
		deployments, err := k8s.ListDeploymentsE(t, in(""), metav1.ListOptions{})
		require.NoError(t, err)
		for _, d := range deployments {
			assert.NotContains(t, d.Name, "ej-elastic-jupyter", "the release's workloads go")
		}
		out, err = kubectl(t, "get", "jupytergateways", "-A", "-o", "name")
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
			// With cert-manager, every ServiceMonitor and the dashboard too; without, none.
			for _, optional := range []bool{true, false} {
				set := map[string]string{"certManager.enabled": strconv.FormatBool(optional)}
				if optional {
					maps.Copy(set, monitoringOn)
				}
				manifest := render(t, files, set)
				file := filepath.Join(t.TempDir(), "rendered.yaml")
				require.NoError(t, os.WriteFile(file, []byte(manifest), 0o644))
				out, err := kubectl(t, "apply", "--server-side", "--force-conflicts", "--field-manager=chart-test", "-f", file)
				require.NoError(t, err, "%s (cert-manager and monitoring %v):\n%s", name, optional, out)
				applied := strings.Count(out, " serverside-applied")
				assert.Equal(t, len(objects(t, manifest)), applied, "%s (cert-manager and monitoring %v): every object is accepted:\n%s", name, optional, out)
				if optional {
					assert.Contains(t, out, "configmap/ej-elastic-jupyter-dashboard serverside-applied", name)
					for _, sm := range ofKind[serviceMonitor](t, objects(t, manifest), "ServiceMonitor") {
						assert.Contains(t, out, "servicemonitor.monitoring.coreos.com/"+sm.Name+" serverside-applied", "%s: %s/%s", name, sm.Namespace, sm.Name)
					}
					if files != nil {
						assert.Contains(t, out, "servicemonitor.monitoring.coreos.com/ej-elastic-jupyter-gateways serverside-applied", "%s: its teams' gateways", name)
					}
				}
			}
		}
	})
}

// On a real API server with the Prometheus Operator's ServiceMonitor CRD, the gateways'
// ServiceMonitor a team gets selects, of the Services in its namespace, the one the controller
// (run here in-process) makes for the team's gateway, and its port metrics reaches the gateway
// container's metrics port.
func TestGatewayServiceMonitorSelectsTheServiceTheControllerMakes(t *testing.T) {
	env, err := testenv.Start(testenv.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	out, err := k8s.RunKubectlAndGetOutputE(t, kubectlOptions(env, ""), "apply", "--server-side", "-f", serviceMonitorCRD(t))
	require.NoError(t, err, out)
	out, err = k8s.RunKubectlAndGetOutputE(t, kubectlOptions(env, ""), "wait", "--for=condition=Established", "crd/servicemonitors.monitoring.coreos.com")
	require.NoError(t, err, out)

	// The team's namespace, gateway and ServiceMonitor as the chart renders them.
	objs := objects(t, render(t, []string{filepath.Join(valuesDir, "gpu-team.yaml")}, map[string]string{"gatewayMetrics.serviceMonitor.enabled": "true"}))
	var team []string
	for _, o := range objs {
		if k := o.GetKind(); k == "Namespace" || k == "JupyterGateway" || k == "ServiceMonitor" {
			team = append(team, mustYAML(t, o.Object))
		}
	}
	require.Len(t, team, 3)
	file := filepath.Join(t.TempDir(), "team.yaml")
	require.NoError(t, os.WriteFile(file, []byte(strings.Join(team, "---\n")), 0o644))
	out, err = k8s.RunKubectlAndGetOutputE(t, kubectlOptions(env, ""), "apply", "--server-side", "-f", file)
	require.NoError(t, err, out)

	ctrllog.SetLogger(logr.Discard())
	mgr, err := controller.NewManager(env.Config, controller.ManagerOptions{MetricsAddr: "0"})
	require.NoError(t, err)
	require.NoError(t, controller.SetupWithManager(mgr, controller.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done, "the controller stops")
	})

	gw := named[ejv1.JupyterGateway](t, objs, "JupyterGateway", "team-vision", "gateway")
	ns := kubectlOptions(env, gw.Namespace)
	require.Eventually(t, func() bool {
		_, err := k8s.GetServiceE(t, ns, gw.Name)
		return err == nil
	}, time.Minute, 100*time.Millisecond, "the controller makes gateway %s's Service", gw.Name)

	sm := gatewayMonitorOf(t, objs, gw.Namespace)
	out, err = k8s.RunKubectlAndGetOutputE(t, ns, "get", "servicemonitor", sm.Name, "-o", "jsonpath={.spec.endpoints[0].port}")
	require.NoError(t, err, out)
	assert.Equal(t, "metrics", out, "the API server keeps the ServiceMonitor as the chart renders it")
	selected, err := k8s.ListServicesE(t, ns, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(&sm.Spec.Selector)})
	require.NoError(t, err)
	require.Len(t, selected, 1, "the ServiceMonitor selects one Service in %s", gw.Namespace)
	svc := selected[0]
	assert.Equal(t, gw.Name, svc.Name, "the gateway's")
	var port *corev1.ServicePort
	for i, p := range svc.Spec.Ports {
		if p.Name == sm.Spec.Endpoints[0].Port {
			port = &svc.Spec.Ports[i]
		}
	}
	require.NotNil(t, port, "the gateway's Service has port %s: %+v", sm.Spec.Endpoints[0].Port, svc.Spec.Ports)
	assert.EqualValues(t, controller.GatewayMetricsPort, port.Port)

	require.Eventually(t, func() bool {
		_, err := k8s.GetDeploymentE(t, ns, gw.Name)
		return err == nil
	}, time.Minute, 100*time.Millisecond, "the controller makes gateway %s's Deployment", gw.Name)
	d := k8s.GetDeployment(t, ns, gw.Name)
	assert.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)), "the Service selects the gateway's pods")
	var containerPorts []corev1.ContainerPort
	for _, c := range d.Spec.Template.Spec.Containers {
		containerPorts = append(containerPorts, c.Ports...)
	}
	assert.Contains(t, containerPorts, corev1.ContainerPort{Name: port.TargetPort.StrVal, ContainerPort: controller.GatewayMetricsPort, Protocol: corev1.ProtocolTCP},
		"the Service's port %s reaches the gateway container's metrics port", port.Name)
}
