package controller

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

func gw(mod func(*ejv1.JupyterGateway)) *ejv1.JupyterGateway {
	g := &ejv1.JupyterGateway{ObjectMeta: metav1.ObjectMeta{Name: "team", Namespace: "ns"}}
	if mod != nil {
		mod(g)
	}
	return g
}

func TestDesiredGatewayDeployment(t *testing.T) {
	cases := []struct {
		name      string
		gw        *ejv1.JupyterGateway
		image     string
		args      []string
		tokenFile bool
		memLimit  string
	}{
		{
			name: "defaults", gw: gw(nil), image: "default-image",
			args:      []string{"--name", "team", "--namespace", "ns", "--log-level", "INFO", "--metrics-bind-address", ":9090", "--auth-token-file", "/var/run/elastic-jupyter/gateway-token/token"},
			tokenFile: true,
		},
		{
			name: "image, log level and resources",
			gw: gw(func(g *ejv1.JupyterGateway) {
				g.Spec.Image = "mine:1"
				g.Spec.LogLevel = ptr.To(ejv1.LogLevelDebug)
				g.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}
			}),
			image:     "mine:1",
			args:      []string{"--name", "team", "--namespace", "ns", "--log-level", "DEBUG", "--metrics-bind-address", ":9090", "--auth-token-file", "/var/run/elastic-jupyter/gateway-token/token"},
			tokenFile: true, memLimit: "256Mi",
		},
		{
			name:  "auth disabled",
			gw:    gw(func(g *ejv1.JupyterGateway) { g.Spec.Auth = &ejv1.GatewayAuth{Mode: ejv1.ModeJupyterAuthDisable} }),
			image: "default-image",
			args:  []string{"--name", "team", "--namespace", "ns", "--log-level", "INFO", "--metrics-bind-address", ":9090"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := desiredGatewayDeployment(tc.gw, "default-image")
			assert.Equal(t, "team", d.Name)
			assert.EqualValues(t, 1, *d.Spec.Replicas)
			assert.Equal(t, d.Spec.Selector.MatchLabels, selectorLabels(ejv1.ComponentGateway, "team"))
			for k, v := range d.Spec.Selector.MatchLabels {
				assert.Equal(t, v, d.Spec.Template.Labels[k], "the selector matches the pods")
			}
			ps := d.Spec.Template.Spec
			assert.Equal(t, "team", ps.ServiceAccountName)
			assert.True(t, *ps.SecurityContext.RunAsNonRoot)
			c := ps.Containers[0]
			assert.Equal(t, tc.image, c.Image)
			assert.Equal(t, []string{version.BinaryPath, "gateway"}, c.Command)
			assert.Equal(t, tc.args, c.Args)
			assert.EqualValues(t, 8888, c.Ports[0].ContainerPort)
			for _, e := range c.Env {
				assert.NotNil(t, e.ValueFrom, "%s: nothing secret, and nothing live, in the environment: only the downward API", e.Name)
			}
			var mounted bool
			for _, m := range c.VolumeMounts {
				if m.MountPath == GatewayTokenDir {
					mounted = true
				}
			}
			assert.Equal(t, tc.tokenFile, mounted)
			if tc.memLimit != "" {
				assert.Equal(t, tc.memLimit, c.Resources.Limits.Memory().String())
			}
		})
	}
}

func TestGatewayPodTemplateIgnoresLiveSettings(t *testing.T) {
	base := desiredGatewayDeployment(gw(nil), "img")
	live := desiredGatewayDeployment(gw(func(g *ejv1.JupyterGateway) {
		g.Spec.CullIdleTimeout = ptr.To[int32](10)
		g.Spec.CullInterval = ptr.To[int32](5)
		g.Spec.CullBusy, g.Spec.CullConnected = true, ptr.To(true)
		g.Spec.CullPolicy = ejv1.CullPolicySuspend
		g.Spec.Kernels = []string{"a", "b"}
		g.Spec.DefaultKernel = ptr.To("a")
		g.Spec.LaunchTimeout = ptr.To[int32](30)
		g.Spec.AllowedEnv = []string{"FOO"}
		g.Spec.ClusterRole = ptr.To("x")
	}), "img")
	assert.True(t, equality.Semantic.DeepEqual(base.Spec.Template, live.Spec.Template), "settings the gateway reads live never restart it")
}

func TestDesiredGatewayRBAC(t *testing.T) {
	sa := []rbacv1.Subject{{Kind: "ServiceAccount", Name: "team", Namespace: "ns"}}
	cases := []struct {
		name     string
		gw       *ejv1.JupyterGateway
		roles    map[string][]rbacv1.PolicyRule // namespace/name -> rules
		bindings map[string]rbacv1.RoleRef
	}{
		{
			name:     "kernels in the gateway's namespace: one Role",
			gw:       gw(nil),
			roles:    map[string][]rbacv1.PolicyRule{"ns/elastic-jupyter-gateway-team": append(append(append([]rbacv1.PolicyRule(nil), gatewaySelfRules...), credentialsRule), gatewayKernelRules...)},
			bindings: map[string]rbacv1.RoleRef{"ns/elastic-jupyter-gateway-team": {APIGroup: rbacv1.GroupName, Kind: "Role", Name: "elastic-jupyter-gateway-team"}},
		},
		{
			name: "kernels elsewhere: a Role in each namespace",
			gw:   gw(func(g *ejv1.JupyterGateway) { g.Spec.KernelNamespace = "kernels" }),
			roles: map[string][]rbacv1.PolicyRule{
				"ns/elastic-jupyter-gateway-team":         append(append([]rbacv1.PolicyRule(nil), gatewaySelfRules...), credentialsRule),
				"kernels/elastic-jupyter-gateway-ns.team": gatewayKernelRules,
			},
			bindings: map[string]rbacv1.RoleRef{
				"ns/elastic-jupyter-gateway-team":         {APIGroup: rbacv1.GroupName, Kind: "Role", Name: "elastic-jupyter-gateway-team"},
				"kernels/elastic-jupyter-gateway-ns.team": {APIGroup: rbacv1.GroupName, Kind: "Role", Name: "elastic-jupyter-gateway-ns.team"},
			},
		},
		{
			name: "a ClusterRole instead",
			gw: gw(func(g *ejv1.JupyterGateway) {
				g.Spec.KernelNamespace = "kernels"
				g.Spec.ClusterRole = ptr.To("power")
			}),
			roles: map[string][]rbacv1.PolicyRule{},
			bindings: map[string]rbacv1.RoleRef{
				"ns/elastic-jupyter-gateway-team":         {APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "power"},
				"kernels/elastic-jupyter-gateway-ns.team": {APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "power"},
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			roles, bindings := desiredGatewayRBAC(tc.gw)
			gotRoles := map[string][]rbacv1.PolicyRule{}
			for _, r := range roles {
				gotRoles[r.Namespace+"/"+r.Name] = r.Rules
				assert.Equal(t, "team", r.Labels[ejv1.LabelGateway])
				if r.Namespace != "ns" {
					assert.Equal(t, "ns", r.Annotations[ejv1.AnnotationGatewayNamespace])
				}
				for _, rule := range r.Rules {
					assert.NotContains(t, rule.Verbs, "*")
					assert.NotContains(t, rule.Resources, "*")
					if len(rule.Resources) == 1 && rule.Resources[0] == "secrets" && len(rule.ResourceNames) == 0 {
						assert.Equal(t, []string{"get"}, rule.Verbs, "secrets are read one by one, never listed")
					}
				}
			}
			assert.Equal(t, tc.roles, gotRoles)
			gotBindings := map[string]rbacv1.RoleRef{}
			for _, b := range bindings {
				gotBindings[b.Namespace+"/"+b.Name] = b.RoleRef
				assert.Equal(t, sa, b.Subjects)
			}
			assert.Equal(t, tc.bindings, gotBindings)
		})
	}
}

// credentialsRule is what a gateway reads of its namespace's Secrets: its credentials Secret,
// by name, and nothing else.
var credentialsRule = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get", "list", "watch"}, ResourceNames: []string{"team-credentials"}}

func TestGatewayTokenSecret(t *testing.T) {
	s, err := newGatewayTokenSecret(gw(nil))
	require.NoError(t, err)
	assert.Equal(t, "team-token", s.Name)
	assert.Regexp(t, "^[0-9a-f]{64}$", string(s.Data["token"]))
	s2, _ := newGatewayTokenSecret(gw(nil))
	assert.NotEqual(t, s.Data, s2.Data)
	assert.Equal(t, "given", GatewayTokenSecretName(gw(func(g *ejv1.JupyterGateway) { g.Spec.Auth = &ejv1.GatewayAuth{SecretName: "given"} })))
	assert.Equal(t, "http://team.ns.svc:8888", GatewayURL("team", "ns"))
}

func TestIsEnterpriseGatewayImage(t *testing.T) {
	for image, want := range map[string]bool{
		"ccr.ccs.tencentyun.com/kubeflow-oteam/enterprise-gateway:2.5.0": true,
		"ghcr.io/skai-x/enterprise-gateway:2.6.0":                        true,
		"elyra/enterprise-gateway@sha256:abc":                            true,
		"enterprise-gateway":                                             true,
		"ghcr.io/elastic-jupyter/elastic-jupyter:v1":                     false,
		"registry.local:5000/enterprise-gateway-fork:1":                  false,
	} {
		assert.Equal(t, want, isEnterpriseGatewayImage(image), image)
	}
}

func TestMissingKernelSpecs(t *testing.T) {
	have := map[string]bool{"python3": true, "gpu": true}
	assert.Empty(t, missingKernelSpecs(gw(func(g *ejv1.JupyterGateway) { g.Spec.Kernels = []string{"python3", "gpu"} }), have))
	assert.Equal(t, []string{"tiny"}, missingKernelSpecs(gw(func(g *ejv1.JupyterGateway) { g.Spec.Kernels = []string{"python3", "tiny", "tiny"} }), have))
	assert.Equal(t, []string{"gone"}, missingKernelSpecs(gw(func(g *ejv1.JupyterGateway) { g.Spec.DefaultKernel = ptr.To("gone") }), have), "the default kernel too")
	assert.Empty(t, missingKernelSpecs(gw(nil), have), "an empty list offers every kernelspec of the namespace")
}
