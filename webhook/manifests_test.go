package webhook_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
	"github.com/elastic-jupyter/elastic-jupyter/webhook"
)

// The configurations in config/webhook (which the chart copies) name the paths the webhook
// serves, select kernel pods by their label only, and fail closed.
func TestWebhookConfigurations(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "webhook", "manifests.yaml"))
	require.NoError(t, err)
	var mutating admissionregistrationv1.MutatingWebhookConfiguration
	var validating admissionregistrationv1.ValidatingWebhookConfiguration
	for _, doc := range strings.Split(string(data), "\n---") {
		var head struct{ Kind string }
		require.NoError(t, yaml.Unmarshal([]byte(doc), &head))
		switch head.Kind {
		case "MutatingWebhookConfiguration":
			require.NoError(t, yaml.UnmarshalStrict([]byte(doc), &mutating))
		case "ValidatingWebhookConfiguration":
			require.NoError(t, yaml.UnmarshalStrict([]byte(doc), &validating))
		}
	}
	kernelSelector := map[string]string{ejv1.LabelComponent: ejv1.ComponentKernel}

	require.Len(t, mutating.Webhooks, 1)
	m := mutating.Webhooks[0]
	assert.Equal(t, webhook.PathMutateKernelPod, *m.ClientConfig.Service.Path)
	assert.Equal(t, kernelSelector, m.ObjectSelector.MatchLabels)
	assert.Equal(t, admissionregistrationv1.SideEffectClassNone, *m.SideEffects)
	assert.Equal(t, admissionregistrationv1.Fail, *m.FailurePolicy)
	assert.Equal(t, admissionregistrationv1.IfNeededReinvocationPolicy, *m.ReinvocationPolicy)
	assert.NotNil(t, m.TimeoutSeconds)
	assert.Equal(t, []string{"pods"}, m.Rules[0].Resources)

	paths := map[string]admissionregistrationv1.ValidatingWebhook{}
	for _, v := range validating.Webhooks {
		paths[*v.ClientConfig.Service.Path] = v
		assert.Equal(t, admissionregistrationv1.SideEffectClassNone, *v.SideEffects, v.Name)
		assert.Equal(t, admissionregistrationv1.Fail, *v.FailurePolicy, v.Name)
		assert.NotNil(t, v.TimeoutSeconds, v.Name)
	}
	want := []string{webhook.PathValidateKernelPod}
	for _, kind := range webhook.ValidatedKinds() {
		want = append(want, webhook.ValidatePath(kind))
		v := paths[webhook.ValidatePath(kind)]
		require.Len(t, v.Rules, 1, kind)
		assert.Equal(t, []string{ejv1.GroupVersion.Group}, v.Rules[0].APIGroups, kind)
		assert.Equal(t, []string{strings.ToLower(kind) + "s"}, v.Rules[0].Resources, kind)
	}
	assert.ElementsMatch(t, want, func() []string {
		var got []string
		for p := range paths {
			got = append(got, p)
		}
		return got
	}())
	assert.Equal(t, kernelSelector, paths[webhook.PathValidateKernelPod].ObjectSelector.MatchLabels)
}
