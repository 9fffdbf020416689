package testenv

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// A manifest's ClusterRole and Role are bound to the user, whose config can do what they
// allow and nothing else; a Role's namespace is created for it.
func TestGrantManifest(t *testing.T) {
	env, err := Start(Options{})
	require.NoError(t, err)
	defer func() { require.NoError(t, env.Stop()) }()
	ctx := context.Background()

	manifest := filepath.Join(t.TempDir(), "rbac.yaml")
	require.NoError(t, os.WriteFile(manifest, []byte(`---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: reader
rules:
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: configs
  namespace: granted
rules:
- apiGroups: [""]
  resources: [configmaps]
  verbs: [list]
`), 0o600))
	cfg, err := env.GrantManifest(ctx, rest.ImpersonationConfig{UserName: "someone"}, manifest)
	require.NoError(t, err)
	assert.Empty(t, env.Config.Impersonate.UserName, "the admin config is left alone")
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)

	require.NoError(t, c.Get(ctx, client.ObjectKey{Name: "granted"}, &corev1.Namespace{}), "the ClusterRole allows getting namespaces")
	require.NoError(t, c.List(ctx, &corev1.ConfigMapList{}, client.InNamespace("granted")), "the Role allows listing its namespace's ConfigMaps")
	for what, err := range map[string]error{
		"listing ConfigMaps in another namespace": c.List(ctx, &corev1.ConfigMapList{}, client.InNamespace("default")),
		"listing Secrets":                         c.List(ctx, &corev1.SecretList{}, client.InNamespace("granted")),
		"listing namespaces":                      c.List(ctx, &corev1.NamespaceList{}),
	} {
		assert.True(t, apierrors.IsForbidden(err), "%s is forbidden, got %v", what, err)
	}

	// Typed roles work as well.
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "secrets"}, Rules: []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"list"}}}}
	cfg, err = env.Grant(ctx, rest.ImpersonationConfig{UserName: "other"}, role)
	require.NoError(t, err)
	other, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	require.NoError(t, err)
	assert.NoError(t, other.List(ctx, &corev1.SecretList{}, client.InNamespace("granted")))
	assert.True(t, apierrors.IsForbidden(other.List(ctx, &corev1.ConfigMapList{}, client.InNamespace("granted"))))

	_, err = env.Grant(ctx, rest.ImpersonationConfig{UserName: "x"}, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c", Namespace: "default"}})
	assert.ErrorContains(t, err, "not a ClusterRole or a Role")
	_, err = env.Grant(ctx, rest.ImpersonationConfig{})
	assert.ErrorContains(t, err, "no user")
}
