package chart

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
	"github.com/elastic-jupyter/elastic-jupyter/webhook"
)

// The rendered team policy, read by the webhook's own parser and applied by its own mutation
// to a kernel pod of each team's kernelspec: whole GPUs with the GPU toleration, a MIG slice,
// and nothing for the CPU team.
func TestTeamPolicyGivesEachTeamItsGPUs(t *testing.T) {
	objs := objects(t, render(t, []string{filepath.Join(valuesDir, "multi-team.yaml")}, nil))
	cm := named[corev1.ConfigMap](t, objs, "ConfigMap", namespace, "elastic-jupyter-policy")
	policy, err := webhook.ParsePolicy([]byte(cm.Data["policy.yaml"]))
	require.NoError(t, err, "the webhook accepts the rendered policy")

	for _, c := range []struct {
		ns, kernelspec string
		resource       corev1.ResourceName
		gpus           int64
		toleration     string
	}{
		{"team-vision", "python3-gpu", "nvidia.com/gpu", 1, ""},
		{"team-vision", "python3-2gpu", "nvidia.com/gpu", 2, ""},
		{"team-nlp", "python3-mig", "nvidia.com/mig-1g.10gb", 1, "nvidia.com/mig"},
		{"team-analytics", "python3", "", 0, ""},
	} {
		ks := named[ejv1.JupyterKernelSpec](t, objs, "JupyterKernelSpec", c.ns, c.kernelspec)
		out, err := webhook.MutateKernelPod(kernelPod(c.ns, ks), ks, policy.For(c.ns), webhook.MutateOptions{})
		require.NoError(t, err, "%s/%s", c.ns, c.kernelspec)
		k := out.Spec.Containers[0]
		gpuLimits := map[corev1.ResourceName]resource.Quantity{}
		for name, q := range k.Resources.Limits {
			if strings.Contains(string(name), "nvidia.com/") {
				gpuLimits[name] = q
			}
		}
		if c.gpus == 0 {
			assert.Empty(t, gpuLimits, "%s/%s gets no GPU", c.ns, c.kernelspec)
			assert.Empty(t, out.Spec.Tolerations, "%s/%s tolerates no GPU taint", c.ns, c.kernelspec)
			continue
		}
		require.Len(t, gpuLimits, 1, "%s/%s", c.ns, c.kernelspec)
		q := gpuLimits[c.resource]
		assert.EqualValues(t, c.gpus, q.Value(), "%s/%s gets %d of %s", c.ns, c.kernelspec, c.gpus, c.resource)
		keys := map[string]bool{}
		for _, tol := range out.Spec.Tolerations {
			keys[tol.Key] = true
		}
		assert.True(t, keys["nvidia.com/gpu"], "%s/%s tolerates the GPU taint", c.ns, c.kernelspec)
		if c.toleration != "" {
			assert.True(t, keys[c.toleration], "%s/%s gets its team's toleration", c.ns, c.kernelspec)
		}
	}

	// A pod asking for more than its team allows is refused, naming the team and the limit.
	ks := named[ejv1.JupyterKernelSpec](t, objs, "JupyterKernelSpec", "team-nlp", "python3-mig")
	two := int32(2)
	ks.Spec.Resources.GPUs = &two
	_, err = webhook.MutateKernelPod(kernelPod("team-nlp", ks), ks, policy.For("team-nlp"), webhook.MutateOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "nlp")
}

// kernelPod is a kernel pod as the controller makes it from ks.
func kernelPod(ns string, ks *ejv1.JupyterKernelSpec) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "alice-0b8c2f1e", Namespace: ns,
			Labels: map[string]string{ejv1.LabelComponent: ejv1.ComponentKernel, ejv1.LabelKernelID: "0b8c2f1e", ejv1.LabelKernelSpec: ks.Name},
			Annotations: map[string]string{
				ejv1.AnnotationConnectionSecret: "0b8c2f1e-connection",
				ejv1.AnnotationKernelSpec:       ns + "/" + ks.Name,
			},
		},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "kernel", Image: ks.Spec.Image, Command: ks.Spec.Command}},
		},
	}
}

// The webhook configurations send only kernel pods and our kinds, as config/webhook/manifests.yaml
// declares, to the chart's Service; the CA comes from cert-manager or from Helm.
func TestWebhookConfigurationsSelectOnlyKernelPodsAndOurKinds(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "webhook", "manifests.yaml"))
	require.NoError(t, err)
	source := objects(t, string(data))
	wantMutating := ofKind[admissionregistrationv1.MutatingWebhookConfiguration](t, source, "MutatingWebhookConfiguration")[0]
	wantValidating := ofKind[admissionregistrationv1.ValidatingWebhookConfiguration](t, source, "ValidatingWebhookConfiguration")[0]

	for _, certManager := range []bool{true, false} {
		objs := objects(t, render(t, nil, map[string]string{"certManager.enabled": map[bool]string{true: "true", false: "false"}[certManager]}))
		mutating := ofKind[admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration")
		validating := ofKind[admissionregistrationv1.ValidatingWebhookConfiguration](t, objs, "ValidatingWebhookConfiguration")
		require.Len(t, mutating, 1)
		require.Len(t, validating, 1)

		require.Len(t, mutating[0].Webhooks, len(wantMutating.Webhooks))
		for i, w := range mutating[0].Webhooks {
			want := wantMutating.Webhooks[i]
			assert.Equal(t, want.Name, w.Name)
			assert.Equal(t, want.Rules, w.Rules, w.Name)
			assert.Equal(t, want.ObjectSelector, w.ObjectSelector, "%s selects kernel pods only", w.Name)
			assert.Equal(t, map[string]string{ejv1.LabelComponent: ejv1.ComponentKernel}, w.ObjectSelector.MatchLabels)
			assert.Equal(t, *want.ClientConfig.Service.Path, *w.ClientConfig.Service.Path, w.Name)
			assert.Equal(t, admissionregistrationv1.SideEffectClassNone, *w.SideEffects)
			assert.Equal(t, admissionregistrationv1.IfNeededReinvocationPolicy, *w.ReinvocationPolicy)
		}
		require.Len(t, validating[0].Webhooks, len(wantValidating.Webhooks))
		for i, w := range validating[0].Webhooks {
			want := wantValidating.Webhooks[i]
			assert.Equal(t, want.Name, w.Name)
			assert.Equal(t, want.Rules, w.Rules, w.Name)
			assert.Equal(t, *want.ClientConfig.Service.Path, *w.ClientConfig.Service.Path, w.Name)
			if w.Rules[0].Resources[0] == "pods" {
				assert.Equal(t, want.ObjectSelector, w.ObjectSelector, "%s selects kernel pods only", w.Name)
			} else {
				assert.Equal(t, []string{"kubeflow.tkestack.io"}, w.Rules[0].APIGroups, w.Name)
				require.NotNil(t, w.ObjectSelector, w.Name)
				assert.Equal(t, "kubeflow.tkestack.io/chart-validated", w.ObjectSelector.MatchExpressions[0].Key,
					"%s skips the team objects the chart checked itself", w.Name)
			}
		}

		all := append(append([]admissionregistrationv1.WebhookClientConfig{}, clientConfigs(mutating[0].Webhooks)...), clientConfigsV(validating[0].Webhooks)...)
		for _, cc := range all {
			assert.Equal(t, "ej-elastic-jupyter-webhook", cc.Service.Name)
			assert.Equal(t, namespace, cc.Service.Namespace)
		}
		annotations := []map[string]string{mutating[0].Annotations, validating[0].Annotations}
		if certManager {
			for _, a := range annotations {
				assert.Equal(t, namespace+"/ej-elastic-jupyter-webhook", a["cert-manager.io/inject-ca-from"])
			}
			for _, cc := range all {
				assert.Empty(t, cc.CABundle, "cert-manager injects the CA")
			}
			crt := find(objs, "Certificate", namespace, "ej-elastic-jupyter-webhook")
			require.NotNil(t, crt, "a cert-manager Certificate for the webhook")
			names, _, _ := unstructured.NestedStringSlice(crt.Object, "spec", "dnsNames")
			assert.Contains(t, names, "ej-elastic-jupyter-webhook.elastic-jupyter.svc")
			secretName, _, _ := unstructured.NestedString(crt.Object, "spec", "secretName")
			assert.Equal(t, "ej-elastic-jupyter-webhook-tls", secretName, "the Secret the webhook mounts")
			assert.NotNil(t, find(objs, "Issuer", namespace, "ej-elastic-jupyter-selfsigned"), "a self-signed Issuer")
			assert.Nil(t, find(objs, "Secret", namespace, "ej-elastic-jupyter-webhook-tls"), "cert-manager writes the Secret")
			continue
		}
		for _, a := range annotations {
			assert.NotContains(t, a, "cert-manager.io/inject-ca-from")
		}
		secret := named[corev1.Secret](t, objs, "Secret", namespace, "ej-elastic-jupyter-webhook-tls")
		roots := x509.NewCertPool()
		for _, cc := range all {
			require.True(t, roots.AppendCertsFromPEM(cc.CABundle), "the caBundle is a PEM certificate")
			assert.Equal(t, all[0].CABundle, cc.CABundle, "one CA for every webhook")
		}
		block, _ := pem.Decode(secret.Data["tls.crt"])
		require.NotNil(t, block, "the Secret holds a PEM certificate")
		cert, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		_, err = cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "ej-elastic-jupyter-webhook.elastic-jupyter.svc"})
		assert.NoError(t, err, "the webhook's certificate is signed by the caBundle for the Service's name")
		assert.NotEmpty(t, secret.Data["tls.key"])
	}
}

func clientConfigs(ws []admissionregistrationv1.MutatingWebhook) []admissionregistrationv1.WebhookClientConfig {
	var out []admissionregistrationv1.WebhookClientConfig
	for _, w := range ws {
		out = append(out, w.ClientConfig)
	}
	return out
}

func clientConfigsV(ws []admissionregistrationv1.ValidatingWebhook) []admissionregistrationv1.WebhookClientConfig {
	var out []admissionregistrationv1.WebhookClientConfig
	for _, w := range ws {
		out = append(out, w.ClientConfig)
	}
	return out
}

// Every flag the chart passes to a binary is one the binary has.
func TestEveryFlagTheChartPassesExists(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "elastic-jupyter")
	build := exec.Command("go", "build", "-o", bin, "./cmd/elastic-jupyter")
	build.Dir = testenv.RepoRoot()
	out, err := build.CombinedOutput()
	require.NoError(t, err, string(out))

	objs := objects(t, render(t, []string{filepath.Join(valuesDir, "mig-team.yaml")}, nil))
	flag := regexp.MustCompile(`^--?([a-z0-9-]+)(=|$)`)
	deps := ofKind[appsv1.Deployment](t, objs, "Deployment")
	require.Len(t, deps, 2)
	for _, d := range deps {
		c := d.Spec.Template.Spec.Containers[0]
		require.Len(t, c.Command, 2, "%s runs elastic-jupyter <subcommand>", d.Name)
		assert.Equal(t, "/usr/local/bin/elastic-jupyter", c.Command[0], "the image's path (Dockerfile)")
		help, _ := exec.Command(bin, c.Command[1], "-h").CombinedOutput()
		require.Contains(t, string(help), "Usage of "+c.Command[1])
		for _, a := range c.Args {
			m := flag.FindStringSubmatch(a)
			require.NotNil(t, m, "%s: %q is a flag", d.Name, a)
			assert.Regexp(t, `(?m)^\s+-`+regexp.QuoteMeta(m[1])+`\b`, string(help), "%s passes %s, which `elastic-jupyter %s` has", d.Name, a, c.Command[1])
		}
	}
}
