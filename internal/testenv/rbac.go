package testenv

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
)

// Grant creates roles (ClusterRoles, and Roles with their namespaces, which it creates if
// missing), binds each to the user as names (a ClusterRoleBinding or a RoleBinding of the
// role's name), and returns a copy of Config that impersonates that user: for running a
// component in a test with nothing but its RBAC, as it runs in a cluster.
func (e *Env) Grant(ctx context.Context, as rest.ImpersonationConfig, roles ...client.Object) (*rest.Config, error) {
	if as.UserName == "" {
		return nil, errors.New("granting roles: no user to impersonate")
	}
	subjects := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: as.UserName}}
	for _, role := range roles {
		gvk, err := apiutil.GVKForObject(role, e.Scheme)
		if err != nil {
			return nil, fmt.Errorf("granting %s: %w", role.GetName(), err)
		}
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: gvk.Kind, Name: role.GetName()}
		var binding client.Object
		switch {
		case gvk.Group == rbacv1.GroupName && gvk.Kind == "ClusterRole":
			binding = &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.GetName()}, RoleRef: ref, Subjects: subjects}
		case gvk.Group == rbacv1.GroupName && gvk.Kind == "Role":
			ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: role.GetNamespace()}}
			if err := e.Client.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
				return nil, fmt.Errorf("granting Role %s/%s: creating its namespace: %w", role.GetNamespace(), role.GetName(), err)
			}
			binding = &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: role.GetName(), Namespace: role.GetNamespace()}, RoleRef: ref, Subjects: subjects}
		default:
			return nil, fmt.Errorf("granting %s %s: not a ClusterRole or a Role", gvk.Kind, role.GetName())
		}
		if err := e.Client.Create(ctx, role); err != nil {
			return nil, fmt.Errorf("creating %s %s: %w", gvk.Kind, client.ObjectKeyFromObject(role), err)
		}
		if err := e.Client.Create(ctx, binding); err != nil {
			return nil, fmt.Errorf("binding %s %s to %s: %w", gvk.Kind, client.ObjectKeyFromObject(role), as.UserName, err)
		}
	}
	cfg := rest.CopyConfig(e.Config)
	cfg.Impersonate = as
	return cfg, nil
}

// GrantManifest is Grant with the roles of a YAML manifest, such as config/rbac/role.yaml; a
// relative path is taken from the repository's root.
func (e *Env) GrantManifest(ctx context.Context, as rest.ImpersonationConfig, path string) (*rest.Config, error) {
	objs, err := ReadManifests(path)
	if err != nil {
		return nil, err
	}
	roles := make([]client.Object, len(objs))
	for i, u := range objs {
		roles[i] = u
	}
	cfg, err := e.Grant(ctx, as, roles...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}
