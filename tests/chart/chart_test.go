package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/logger"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
	"github.com/elastic-jupyter/elastic-jupyter/webhook"
)

func TestHelmLintIsCleanWithEveryValuesFile(t *testing.T) {
	cases := map[string][]string{
		"defaults":             nil,
		"without cert-manager": {"--set", "certManager.enabled=false"},
		"with every ServiceMonitor and the dashboard": {"-f", filepath.Join(valuesDir, "multi-team.yaml"), "--set",
			"controller.metrics.serviceMonitor.enabled=true,webhook.metrics.serviceMonitor.enabled=true,gatewayMetrics.serviceMonitor.enabled=true,grafana.dashboard.enabled=true"},
	}
	for _, f := range valuesFiles(t) {
		cases[filepath.Base(f)] = []string{"-f", f}
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			out, err := helm.RunHelmCommandAndGetOutputE(t, &helm.Options{Logger: logger.Discard}, "lint", append([]string{"--strict", chartDir}, args...)...)
			require.NoError(t, err, out)
			assert.Contains(t, out, "0 chart(s) failed")
			assert.NotContains(t, out, "[WARNING]")
			assert.NotContains(t, out, "[INFO]")
		})
	}
}

func TestChartCRDsEqualTheRepositorys(t *testing.T) {
	repo, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "crds", "*.yaml"))
	require.NoError(t, err)
	require.Len(t, repo, 5)
	rendered := objects(t, render(t, nil, nil))
	crds := ofKind[apiextensionsv1.CustomResourceDefinition](t, rendered, "CustomResourceDefinition")
	require.Len(t, crds, len(repo))
	for _, f := range repo {
		want, err := os.ReadFile(f)
		require.NoError(t, err)
		copied, err := os.ReadFile(filepath.Join(chartDir, "charts", "crds", "files", filepath.Base(f)))
		require.NoError(t, err, "the chart carries %s", filepath.Base(f))
		assert.Equal(t, string(want), string(copied), "the chart's copy of %s is identical: run make manifests", filepath.Base(f))

		var crd apiextensionsv1.CustomResourceDefinition
		require.NoError(t, yaml.UnmarshalStrict(want, &crd))
		for _, got := range crds {
			if got.Name == crd.Name {
				assert.Equal(t, crd.Spec, got.Spec, "the rendered %s is crds/'s", crd.Name)
				assert.Equal(t, "keep", got.Annotations["helm.sh/resource-policy"], "CRDs stay on uninstall by default")
				assert.Equal(t, "Helm", got.Labels["app.kubernetes.io/managed-by"])
			}
		}
	}
	crds = ofKind[apiextensionsv1.CustomResourceDefinition](t, objects(t, render(t, nil, map[string]string{"crds.keep": "false"})), "CustomResourceDefinition")
	for _, c := range crds {
		assert.NotContains(t, c.Annotations, "helm.sh/resource-policy", "crds.keep=false lets uninstall remove %s", c.Name)
	}
	crds = ofKind[apiextensionsv1.CustomResourceDefinition](t, objects(t, render(t, nil, map[string]string{"crds.enabled": "false"})), "CustomResourceDefinition")
	assert.Empty(t, crds)
}

func TestTeamGatewaysCarryTheirCullSettings(t *testing.T) {
	objs := objects(t, render(t, []string{filepath.Join(valuesDir, "multi-team.yaml")}, nil))
	type want struct {
		ns      string
		timeout int32
		policy  ejv1.CullPolicy
		kernels []string
	}
	for team, w := range map[string]want{
		"vision":    {"team-vision", 1200, ejv1.CullPolicySuspend, []string{"python3-gpu", "python3-2gpu"}},
		"nlp":       {"team-nlp", 600, ejv1.CullPolicySuspend, []string{"python3-mig"}},
		"analytics": {"team-analytics", 3600, ejv1.CullPolicyDelete, []string{"python3"}},
	} {
		gw := named[ejv1.JupyterGateway](t, objs, "JupyterGateway", w.ns, "gateway")
		assert.Equal(t, w.timeout, *gw.Spec.CullIdleTimeout, team)
		assert.Equal(t, w.policy, gw.Spec.CullPolicy, team)
		assert.EqualValues(t, 60, *gw.Spec.CullInterval, "%s keeps the default interval", team)
		assert.False(t, gw.Spec.CullBusy, team)
		assert.Nil(t, gw.Spec.CullConnected, "%s leaves cullConnected to the gateway's default for its cullPolicy", team)
		assert.Equal(t, w.kernels, gw.Spec.Kernels, team)
		assert.Equal(t, w.kernels[0], *gw.Spec.DefaultKernel, team)
		assert.Equal(t, team, gw.Labels["kubeflow.tkestack.io/team"])
		for _, k := range w.kernels {
			ks := named[ejv1.JupyterKernelSpec](t, objs, "JupyterKernelSpec", w.ns, k)
			assert.Equal(t, "quay.io/jupyter/scipy-notebook:2024-10-07", ks.Spec.Image, "the shared kernel default applies")
			assert.Contains(t, ks.Spec.Command, "{connection_file}")
		}
	}
	named[corev1.Namespace](t, objs, "Namespace", "", "team-vision-dev")

	// A team may set a default's true to false and a number to 0.
	objs = objects(t, render(t, []string{filepath.Join(valuesDir, "gpu-team.yaml")}, map[string]string{
		"teams[0].gateway.cullIdleTimeout": "0", "teams[0].createNamespace": "false",
	}))
	gw := named[ejv1.JupyterGateway](t, objs, "JupyterGateway", "team-vision", "gateway")
	assert.EqualValues(t, 0, *gw.Spec.CullIdleTimeout)
	assert.Empty(t, ofKind[corev1.Namespace](t, objs, "Namespace"))
}

// cullConnected is rendered only when a team (or teamDefaults) sets it: unset, the gateway's
// default follows cullPolicy (true with Suspend, false with Delete). A team's null unsets a
// teamDefaults value; false is a choice, not "unset".
func TestCullConnectedIsRenderedOnlyWhenSet(t *testing.T) {
	for name, c := range map[string]struct {
		values string
		want   *bool
	}{
		"unset with Suspend":     {"teams: [{name: a, namespaces: [team-a], gateway: {cullPolicy: Suspend}}]", nil},
		"unset with Delete":      {"teams: [{name: a, namespaces: [team-a], gateway: {cullPolicy: Delete}}]", nil},
		"false with Suspend":     {"teams: [{name: a, namespaces: [team-a], gateway: {cullPolicy: Suspend, cullConnected: false}}]", ptr.To(false)},
		"true with Delete":       {"teams: [{name: a, namespaces: [team-a], gateway: {cullPolicy: Delete, cullConnected: true}}]", ptr.To(true)},
		"from teamDefaults":      {"teamDefaults: {gateway: {cullConnected: false}}\nteams: [{name: a, namespaces: [team-a]}]", ptr.To(false)},
		"null over teamDefaults": {"teamDefaults: {gateway: {cullConnected: false}}\nteams: [{name: a, namespaces: [team-a], gateway: {cullConnected: null}}]", nil},
	} {
		t.Run(name, func(t *testing.T) {
			gw := named[ejv1.JupyterGateway](t, objects(t, render(t, []string{valuesFile(t, c.values)}, nil)), "JupyterGateway", "team-a", "gateway")
			assert.Equal(t, c.want, gw.Spec.CullConnected)
		})
	}
}

func TestFirstInstallLeavesTeamObjectsForTheUpgrade(t *testing.T) {
	out, err := renderE(t, []string{filepath.Join(valuesDir, "gpu-team.yaml")}, nil)
	require.NoError(t, err)
	objs := objects(t, out)
	assert.Empty(t, ofKind[ejv1.JupyterGateway](t, objs, "JupyterGateway"), "without the CRDs in the API, no custom resource is rendered")
	assert.NotEmpty(t, ofKind[apiextensionsv1.CustomResourceDefinition](t, objs, "CustomResourceDefinition"))
	named[corev1.Namespace](t, objs, "Namespace", "", "team-vision")
}

func TestEveryPodRunsAsNonRoot(t *testing.T) {
	for _, set := range []map[string]string{nil, {"certManager.enabled": "false"}} {
		objs := objects(t, render(t, []string{filepath.Join(valuesDir, "multi-team.yaml")}, set))
		deps := ofKind[appsv1.Deployment](t, objs, "Deployment")
		require.Len(t, deps, 2, "the controller and the webhook")
		for _, d := range deps {
			pod := d.Spec.Template.Spec
			require.NotNil(t, pod.SecurityContext, d.Name)
			assert.True(t, *pod.SecurityContext.RunAsNonRoot, d.Name)
			assert.NotZero(t, *pod.SecurityContext.RunAsUser, d.Name)
			assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, pod.SecurityContext.SeccompProfile.Type, d.Name)
			for _, c := range pod.Containers {
				sc := c.SecurityContext
				require.NotNil(t, sc, "%s/%s", d.Name, c.Name)
				assert.False(t, *sc.AllowPrivilegeEscalation, "%s/%s", d.Name, c.Name)
				assert.True(t, *sc.ReadOnlyRootFilesystem, "%s/%s", d.Name, c.Name)
				assert.Equal(t, []corev1.Capability{"ALL"}, sc.Capabilities.Drop, "%s/%s", d.Name, c.Name)
				assert.NotNil(t, c.Resources.Requests, "%s/%s has resources", d.Name, c.Name)
				assert.NotNil(t, c.ReadinessProbe, "%s/%s has a readiness probe", d.Name, c.Name)
			}
			for _, k := range []string{"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
				assert.Contains(t, d.Labels, k, d.Name)
			}
		}
	}
}

func TestImageRepositoryTagDigestAndPullPolicy(t *testing.T) {
	image := func(set map[string]string) (string, corev1.PullPolicy) {
		objs := objects(t, render(t, nil, set))
		d := named[appsv1.Deployment](t, objs, "Deployment", namespace, "ej-elastic-jupyter-controller")
		return d.Spec.Template.Spec.Containers[0].Image, d.Spec.Template.Spec.Containers[0].ImagePullPolicy
	}
	img, pull := image(nil)
	assert.Equal(t, "ghcr.io/elastic-jupyter/elastic-jupyter:0.1.0", img, "the tag defaults to the chart's appVersion")
	assert.Equal(t, corev1.PullIfNotPresent, pull)
	img, _ = image(map[string]string{"global.image.repository": "registry.example/ej", "global.image.tag": "v2"})
	assert.Equal(t, "registry.example/ej:v2", img)
	digest := "sha256:" + strings.Repeat("ab", 32)
	img, _ = image(map[string]string{"global.image.digest": digest, "global.image.pullPolicy": "Always"})
	assert.Equal(t, "ghcr.io/elastic-jupyter/elastic-jupyter@"+digest, img)
}

func TestRBACGrantsNoWildcards(t *testing.T) {
	objs := objects(t, render(t, []string{filepath.Join(valuesDir, "multi-team.yaml")}, nil))
	var rules []rbacv1.PolicyRule
	for _, r := range ofKind[rbacv1.ClusterRole](t, objs, "ClusterRole") {
		rules = append(rules, r.Rules...)
	}
	for _, r := range ofKind[rbacv1.Role](t, objs, "Role") {
		rules = append(rules, r.Rules...)
	}
	require.NotEmpty(t, rules)
	for _, r := range rules {
		for _, list := range [][]string{r.Verbs, r.Resources, r.APIGroups} {
			assert.NotContains(t, list, "*", "rule %+v", r)
		}
		assert.NotContains(t, r.Verbs, "escalate", "rule %+v", r)
		assert.NotContains(t, r.Verbs, "impersonate", "rule %+v", r)
	}
}

// The chart grants exactly the RBAC the code declares: the controller's ClusterRole is
// generated from its markers into config/rbac, the webhook's is config/webhook/rbac.yaml.
func TestRBACMatchesWhatTheCodeNeeds(t *testing.T) {
	objs := objects(t, render(t, nil, nil))
	for _, c := range []struct{ file, kind, generated, rendered, ns string }{
		{"config/rbac/role.yaml", "ClusterRole", "elastic-jupyter-controller", "ej-elastic-jupyter-controller", ""},
		{"config/rbac/role.yaml", "Role", "elastic-jupyter-controller", "ej-elastic-jupyter-controller-leader-election", namespace},
		{"config/webhook/rbac.yaml", "ClusterRole", "elastic-jupyter-webhook", "ej-elastic-jupyter-webhook", ""},
		{"config/webhook/rbac.yaml", "Role", "elastic-jupyter-webhook-policy", "ej-elastic-jupyter-webhook-policy", namespace},
	} {
		data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), c.file))
		require.NoError(t, err)
		var want []rbacv1.PolicyRule
		for _, o := range objects(t, string(data)) {
			if o.GetKind() == c.kind && o.GetName() == c.generated {
				want = ofKind[rbacv1.ClusterRole](t, objects(t, mustYAML(t, o.Object)), c.kind)[0].Rules
			}
		}
		require.NotEmpty(t, want, "%s has %s %s", c.file, c.kind, c.generated)
		var got []rbacv1.PolicyRule
		if c.kind == "ClusterRole" {
			got = named[rbacv1.ClusterRole](t, objs, c.kind, "", c.rendered).Rules
		} else {
			got = named[rbacv1.Role](t, objs, c.kind, c.ns, c.rendered).Rules
		}
		assert.ElementsMatch(t, want, got, "%s %s grants what %s says", c.kind, c.rendered, c.file)
	}
}

// valuesFile writes a values file for one test.
func valuesFile(t *testing.T, content string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	require.NoError(t, os.WriteFile(f, []byte(content), 0o644))
	return f
}

func mustYAML(t *testing.T, v any) string {
	t.Helper()
	out, err := yaml.Marshal(v)
	require.NoError(t, err)
	return string(out)
}

func TestValuesTyposAndWrongTypesFailWithTheSchemasMessage(t *testing.T) {
	for set, msg := range map[string]string{
		"controller.replica=2":                          "additional properties 'replica' not allowed",
		"teamDefaults.gateway.culIdleTimeout=60":        "additional properties 'culIdleTimeout' not allowed",
		"teamDefaults.gateway.cullPolicy=Pause":         "value must be one of 'Delete', 'Suspend'",
		"webhook.failurePolicy=Sometimes":               "value must be one of 'Fail', 'Ignore'",
		"teamDefaults.gateway.cullIdleTimeout=-1":       "minimum",
		"teamDefaults.gpu.maxPerKernel=two":             "got string, want integer",
		"certManager.enabled=maybe":                     "got string, want boolean",
		"teamDefaults.state.claimname=x":                "additional properties 'claimname' not allowed",
		"teamDefaults.state.enabled=yes":                "got string, want boolean",
		"teamDefaults.state.accessModes={ReadOnlyMany}": "value must be one of 'ReadWriteMany', 'ReadWriteOnce'",
		"teamDefaults.state.size=10GB":                  "'10GB' does not match pattern",
		"teamDefaults.state.maxBytes=lots":              "'lots' does not match pattern",
		"teamDefaults.kernelspecs[0].state.volume=x":    "additional properties 'volume' not allowed",
		"webhook.metrics.serviceMonitor.enable=true":    "additional properties 'enable' not allowed",
		"webhook.metrics.serviceMonitor.interval=30sec": "'30sec' does not match pattern",
		"gatewayMetrics.serviceMonitor.enabled=yes":     "got string, want boolean",
		"gatewayMetrics.serviceMonitor.labels.a=1":      "got number, want string",
		"grafana.dashboard.enabled=maybe":               "got string, want boolean",
		"grafana.dashboard.namespace=Monitoring":        "'Monitoring' does not match pattern",
		"grafana.dashboards.enabled=true":               "additional properties 'dashboards' not allowed",
	} {
		k, v, _ := strings.Cut(set, "=")
		_, err := renderE(t, nil, map[string]string{k: v})
		require.Error(t, err, set)
		assert.Contains(t, err.Error(), "values don't meet the specifications of the schema", set)
		assert.Contains(t, err.Error(), msg, set)
	}
}

func TestBadTeamsAreRefusedWithTheFix(t *testing.T) {
	gpuTeam := []string{filepath.Join(valuesDir, "gpu-team.yaml")}
	for name, c := range map[string]struct {
		files []string
		set   map[string]string
		msg   string
	}{
		"a namespace in two teams": {gpuTeam, map[string]string{"teams[1].name": "other", "teams[1].namespaces[0]": "team-vision"},
			`namespace "team-vision" already belongs to team vision`},
		"a MIG profile the controller does not count": {gpuTeam, map[string]string{"teams[0].gpu.resourceName": "nvidia.com/mig-1g.10gb"},
			`add it to controller.gpuResources`},
		"a kernelspec over the team's maximum": {gpuTeam, map[string]string{"teams[0].kernelspecs[0].gpus": "3"},
			`kernelspecs[0] (python3-gpu) asks 3 GPUs but gpu.maxPerKernel is 2`},
		// The webhook would refuse the whole policy, and every kernel pod with it.
		"a team's default over its maximum": {gpuTeam, map[string]string{"teams[0].gpu.defaultPerKernel": "3"},
			`teams[0] (vision): gpu.defaultPerKernel is 3 but gpu.maxPerKernel is 2`},
		"a default over the maximum in teamDefaults": {nil, map[string]string{"teamDefaults.gpu.defaultPerKernel": "2"},
			`teamDefaults: gpu.defaultPerKernel is 2 but gpu.maxPerKernel is 1`},
		"a team without namespaces": {nil, map[string]string{"teams[0].name": "x"}, `missing property 'namespaces'`},
		// There is no claim for its kernels' variables.
		"a kernelspec's maxBytes in a team without state": {[]string{filepath.Join(valuesDir, "cpu-team.yaml")}, map[string]string{"teams[0].kernelspecs[0].state.maxBytes": "1Gi"},
			`teams[0] (analytics): kernelspecs[0] (python3) sets state but the team's state.enabled is false`},
		"a kernelspec's state.enabled in a team whose state is off": {gpuTeam, map[string]string{"teams[0].state.enabled": "false", "teams[0].kernelspecs[1].state.enabled": "true"},
			`teams[0] (vision): kernelspecs[1] (python3) sets state but the team's state.enabled is false, so there is no claim`},
		"an argv without the connection file": {append(gpuTeam, valuesFile(t, "teamDefaults: {kernelDefaults: {command: [python3, -m, ipykernel_launcher]}}")), nil,
			`at '/teamDefaults/kernelDefaults/command'`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := renderE(t, c.files, c.set, withCRDs)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.msg)
		})
	}
}

// Every number and boolean of a team may turn its default off: 0 and false are rendered as 0
// and false, in the gateway and in the policy the webhook reads, and are not mistaken for
// "not set" (a Go template's if and default treat 0 and false as empty).
func TestATeamTurnsDefaultsOffWithZeroAndFalse(t *testing.T) {
	objs := objects(t, render(t, []string{valuesFile(t, `
teamDefaults:
  createNamespace: true
  gateway: {cullIdleTimeout: 600, cullBusy: true, cullConnected: true}
  gpu: {defaultPerKernel: 1, maxPerKernel: 2, clientMayRequest: true}
teams:
  - name: cpu
    namespaces: [team-cpu]
    createNamespace: false
    gateway: {cullIdleTimeout: 0, cullBusy: false, cullConnected: false}
    gpu: {defaultPerKernel: 0, maxPerKernel: 0, clientMayRequest: false}
    kernelspecs: [{name: python3}]
  - name: gpu
    namespaces: [team-gpu]
    kernelspecs: [{name: python3-gpu}]
`)}, nil))

	cpu := named[ejv1.JupyterGateway](t, objs, "JupyterGateway", "team-cpu", "gateway")
	require.NotNil(t, cpu.Spec.CullIdleTimeout, "cullIdleTimeout: 0 is rendered (the CRD's 0: never cull)")
	assert.EqualValues(t, 0, *cpu.Spec.CullIdleTimeout, "cullIdleTimeout: 0 over the default 600")
	assert.False(t, cpu.Spec.CullBusy, "cullBusy: false over the default true")
	assert.False(t, ptr.Deref(cpu.Spec.CullConnected, true), "cullConnected: false over the default true")
	gpu := named[ejv1.JupyterGateway](t, objs, "JupyterGateway", "team-gpu", "gateway")
	assert.EqualValues(t, 600, *gpu.Spec.CullIdleTimeout, "the other team keeps the defaults")
	assert.True(t, gpu.Spec.CullBusy, "the other team keeps cullBusy")
	assert.True(t, ptr.Deref(gpu.Spec.CullConnected, false), "the other team keeps cullConnected")
	var namespaces []string
	for _, ns := range ofKind[corev1.Namespace](t, objs, "Namespace") {
		namespaces = append(namespaces, ns.Name)
	}
	assert.Equal(t, []string{"team-gpu"}, namespaces, "createNamespace: false creates none")

	policy := policyOf(t, objs)
	for ns, want := range map[string]webhook.Rules{
		"team-cpu":  {Team: "cpu", DefaultPerKernel: 0, MaxPerKernel: 0, ClientMayRequest: false},
		"team-gpu":  {Team: "gpu", DefaultPerKernel: 1, MaxPerKernel: 2, ClientMayRequest: true},
		"elsewhere": {Team: webhook.DefaultTeam, DefaultPerKernel: 1, MaxPerKernel: 2, ClientMayRequest: true},
	} {
		got := policy.For(ns)
		assert.Equal(t, want.Team, got.Team, ns)
		assert.Equal(t, want.DefaultPerKernel, got.DefaultPerKernel, "%s: gpu.defaultPerKernel", ns)
		assert.Equal(t, want.MaxPerKernel, got.MaxPerKernel, "%s: gpu.maxPerKernel (0 is no GPU, not no limit)", ns)
		assert.Equal(t, want.ClientMayRequest, got.ClientMayRequest, "%s: gpu.clientMayRequest", ns)
	}

	// Each kernelspec says no gpus: the team's default. A client's KERNEL_GPUS=2 is ignored in
	// the CPU team (it may not choose) and honoured in the GPU team.
	for ns, c := range map[string]struct {
		kernelspec      string
		gets, getsAsked int64
	}{"team-cpu": {"python3", 0, 0}, "team-gpu": {"python3-gpu", 1, 2}} {
		ks := named[ejv1.JupyterKernelSpec](t, objs, "JupyterKernelSpec", ns, c.kernelspec)
		assert.Nil(t, ks.Spec.Resources.GPUs, "%s/%s says no gpus", ns, c.kernelspec)
		assertKernelGets(t, policy, ks, "nvidia.com/gpu", c.gets)
		pod := kernelPod(ns, ks)
		pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: webhook.KernelGPUsEnv, Value: "2"}}
		out, err := webhook.MutateKernelPod(pod, ks, policy.For(ns), webhook.MutateOptions{})
		require.NoError(t, err, ns)
		got := extendedResources(out.Spec.Containers[0].Resources.Limits)
		if c.getsAsked == 0 {
			assert.Empty(t, got, "%s ignores KERNEL_GPUS=2", ns)
		} else {
			assert.Equal(t, map[corev1.ResourceName]int64{"nvidia.com/gpu": c.getsAsked}, got, "%s honours KERNEL_GPUS=2", ns)
		}
	}
}
