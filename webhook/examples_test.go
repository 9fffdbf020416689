package webhook_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
	"github.com/elastic-jupyter/elastic-jupyter/webhook"
)

// The project's examples (the original project's among them) pass the validating webhooks
// unchanged, and the quick start's policy parses.
func TestExamplesAreAccepted(t *testing.T) {
	const ns = "examples"
	if err := env.Client.Create(ctx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); !apierrors.IsAlreadyExists(err) {
		require.NoError(t, err)
	}
	c, w := warningClient(t)
	files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "examples", "*", "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	checked := 0
	for _, f := range files {
		objs, err := testenv.ReadManifests(f)
		require.NoError(t, err)
		for _, u := range objs {
			switch {
			case u.GetKind() == "ConfigMap" && u.GetName() == webhook.DefaultPolicyConfigMap:
				policy, _, _ := unstructured.NestedString(u.Object, "data", webhook.PolicyKey)
				_, err := webhook.ParsePolicy([]byte(policy))
				assert.NoError(t, err, f)
				continue
			case u.GroupVersionKind().Group != ejv1.GroupVersion.Group:
				continue
			}
			if u.GetNamespace() == "" {
				u.SetNamespace(ns)
			}
			assert.NoError(t, c.Create(context.Background(), u, client.DryRunAll), "%s: %s %s", f, u.GetKind(), u.GetName())
			checked++
		}
	}
	assert.GreaterOrEqual(t, checked, 8, "every kind has an example")
	t.Logf("warnings:\n%s", w.String())
}
