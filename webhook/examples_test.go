package webhook_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
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
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err, f)
			}
			if len(u.Object) == 0 {
				continue
			}
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
