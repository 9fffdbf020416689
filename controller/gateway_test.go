package controller_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/controller"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

func newGateway(ns, name string) *ejv1.JupyterGateway {
	gw := &ejv1.JupyterGateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	gw.Spec.CullIdleTimeout = ptr.To[int32](3600)
	return gw
}

// gatewayObserved waits until the controller has seen the gateway's current generation.
func gatewayObserved(t *testing.T, gw *ejv1.JupyterGateway) *ejv1.JupyterGateway {
	t.Helper()
	return eventually(t, client.ObjectKeyFromObject(gw), &ejv1.JupyterGateway{}, func(g *ejv1.JupyterGateway) bool {
		return g.Status.ObservedGeneration == g.Generation
	}, "gateway %s observed", gw.Name)
}

// gatewayPods are the pods of a gateway's Deployment (made by kube-controller-manager).
func gatewayPods(t *testing.T, gw *ejv1.JupyterGateway) []corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	require.NoError(t, k8s.List(context.Background(), pods, client.InNamespace(gw.Namespace),
		client.MatchingLabels{ejv1.LabelComponent: ejv1.ComponentGateway, ejv1.LabelInstance: gw.Name}))
	return pods.Items
}

func TestGatewayDeploymentFollowsImageResourcesAndLogLevelButNotCullSettings(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	gw := newGateway(ns, "team")
	require.NoError(t, k8s.Create(ctx, gw))

	d := exists(t, ns, gw.Name, &appsv1.Deployment{})
	assertControlledBy(t, d, gw)
	c := d.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "example.com/elastic-jupyter:test", c.Image, "the controller's --image is the default")
	assert.Equal(t, []string{version.BinaryPath, "gateway"}, c.Command)
	assert.Equal(t, []string{"--name", "team", "--namespace", ns, "--log-level", "INFO", "--metrics-bind-address", ":9090", "--auth-token-file", controller.GatewayTokenFile}, c.Args)
	assert.Equal(t, gw.Name, d.Spec.Template.Spec.ServiceAccountName)
	assert.True(t, *d.Spec.Template.Spec.SecurityContext.RunAsNonRoot)

	var pod corev1.Pod
	require.Eventually(t, func() bool {
		pods := gatewayPods(t, gw)
		if len(pods) == 1 {
			pod = pods[0]
		}
		return len(pods) == 1
	}, wait, poll, "kube-controller-manager runs the gateway's Deployment")

	// Cull settings are read live by the gateway: no rollout, the pod stays.
	gen := d.Generation
	update(t, gw, func(g *ejv1.JupyterGateway) {
		g.Spec.CullIdleTimeout = ptr.To[int32](60)
		g.Spec.CullInterval = ptr.To[int32](10)
		g.Spec.CullPolicy = ejv1.CullPolicySuspend
		g.Spec.Kernels = []string{"python3"}
	})
	gatewayObserved(t, gw)
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(d), d))
	assert.Equal(t, gen, d.Generation, "changing cull settings leaves the Deployment alone")
	pods := gatewayPods(t, gw)
	require.Len(t, pods, 1)
	assert.Equal(t, pod.UID, pods[0].UID, "changing cull settings does not restart the gateway pod")

	update(t, gw, func(g *ejv1.JupyterGateway) {
		g.Spec.Image = "example.com/gateway:v2"
		g.Spec.LogLevel = ptr.To(ejv1.LogLevelDebug)
		g.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("300Mi")}}
	})
	d = eventually(t, client.ObjectKeyFromObject(d), &appsv1.Deployment{}, func(d *appsv1.Deployment) bool {
		c := d.Spec.Template.Spec.Containers[0]
		return c.Image == "example.com/gateway:v2" && len(c.Args) > 5 && c.Args[5] == "DEBUG" &&
			c.Resources.Limits.Memory().String() == "300Mi"
	}, "image, log level and resources reach the Deployment")
	assert.Greater(t, d.Generation, gen)
	require.Eventually(t, func() bool {
		for _, p := range gatewayPods(t, gw) {
			if p.Spec.Containers[0].Image == "example.com/gateway:v2" {
				return true
			}
		}
		return false
	}, wait, poll, "the Deployment rolls out a pod with the new image")

	// A field someone else set on the Deployment is kept; one of ours is put back.
	update(t, d, func(d *appsv1.Deployment) {
		d.Spec.Template.Annotations = map[string]string{"example.com/restartedAt": "now"}
		d.Spec.Template.Spec.Containers[0].Image = "example.com/edited:by-hand"
	})
	eventually(t, client.ObjectKeyFromObject(d), &appsv1.Deployment{}, func(d *appsv1.Deployment) bool {
		return d.Spec.Template.Spec.Containers[0].Image == "example.com/gateway:v2"
	}, "the controller restores the image")
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(d), d))
	assert.Equal(t, "now", d.Spec.Template.Annotations["example.com/restartedAt"], "fields others own are kept")
}

func TestGatewayObjectsTokenAndStatus(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	gw := newGateway(ns, "gw")
	require.NoError(t, k8s.Create(ctx, gw))

	svc := exists(t, ns, gw.Name, &corev1.Service{})
	assertControlledBy(t, svc, gw)
	require.Len(t, svc.Spec.Ports, 2, "the kernel gateway API and the gateway's metrics")
	assert.Equal(t, "http", svc.Spec.Ports[0].Name)
	assert.EqualValues(t, 8888, svc.Spec.Ports[0].Port)
	assert.Equal(t, "metrics", svc.Spec.Ports[1].Name)
	assert.EqualValues(t, 9090, svc.Spec.Ports[1].Port)
	assert.Equal(t, corev1.ServiceTypeClusterIP, svc.Spec.Type)
	assertControlledBy(t, exists(t, ns, gw.Name, &corev1.ServiceAccount{}), gw)
	token := exists(t, ns, gw.Name+"-token", &corev1.Secret{})
	assertControlledBy(t, token, gw)
	assert.Regexp(t, "^[0-9a-f]{64}$", string(token.Data["token"]))
	d := exists(t, ns, gw.Name, &appsv1.Deployment{})
	vol := d.Spec.Template.Spec.Volumes
	require.NotEmpty(t, vol)
	assert.Equal(t, token.Name, vol[len(vol)-1].Secret.SecretName, "the token Secret is mounted, never passed as a value")

	// Two kernels of this gateway: one running with a GPU, one suspended.
	running := kernelFixture(t, ns, "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d")
	require.NoError(t, k8s.Create(ctx, running))
	kubeletRun(t, kernelPod(t, running, ""), "10.2.0.1")
	suspended := kernelFixture(t, ns, "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d")
	suspended.Spec.Suspend = true
	require.NoError(t, k8s.Create(ctx, suspended))
	other := kernelFixture(t, ns, "aaaabbbb-cccc-4ddd-8eee-ffff00001111")
	other.Labels[ejv1.LabelGateway] = "another-gateway"
	require.NoError(t, k8s.Create(ctx, other))
	kubeletRun(t, kernelPod(t, other, ""), "10.2.0.2")

	got := eventually(t, client.ObjectKeyFromObject(gw), &ejv1.JupyterGateway{}, func(g *ejv1.JupyterGateway) bool {
		return g.Status.KernelsRunning == 1 && g.Status.KernelsSuspended == 1 && g.Status.GPUsHeld == 1
	}, "the gateway counts its own kernels and their GPUs")
	assert.False(t, got.Status.Ready, "no gateway pod is ready")
	assert.Equal(t, "http://gw."+ns+".svc:8888", got.Status.URL)

	// The gateway pod turns Ready (the test plays the kubelet).
	var pod corev1.Pod
	require.Eventually(t, func() bool {
		pods := gatewayPods(t, gw)
		if len(pods) == 1 {
			pod = pods[0]
		}
		return len(pods) == 1
	}, wait, poll, "the gateway pod exists")
	kubeletStatus(t, &pod, func(s *corev1.PodStatus) {
		now := metav1.Now()
		s.Phase = corev1.PodRunning
		s.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now}}
	})
	eventually(t, client.ObjectKeyFromObject(gw), &ejv1.JupyterGateway{}, func(g *ejv1.JupyterGateway) bool {
		return g.Status.Ready && g.Status.ReadyReplicas == 1
	}, "a ready gateway pod makes the gateway ready")
	assertEvent(t, gw, "DeploymentReady")

	update(t, running, func(k *ejv1.JupyterKernel) { k.Spec.Suspend = true })
	eventually(t, client.ObjectKeyFromObject(gw), &ejv1.JupyterGateway{}, func(g *ejv1.JupyterGateway) bool {
		return g.Status.KernelsRunning == 0 && g.Status.KernelsSuspended == 2 && g.Status.GPUsHeld == 0
	}, "suspending a kernel frees its GPU in the gateway's count")

	// Auth disabled: no token flag, no mount.
	update(t, gw, func(g *ejv1.JupyterGateway) { g.Spec.Auth = &ejv1.GatewayAuth{Mode: ejv1.ModeJupyterAuthDisable} })
	eventually(t, client.ObjectKeyFromObject(d), &appsv1.Deployment{}, func(d *appsv1.Deployment) bool {
		for _, a := range d.Spec.Template.Spec.Containers[0].Args {
			if a == "--auth-token-file" {
				return false
			}
		}
		return true
	}, "auth mode disable drops the token file")
}

func TestGatewayRBACIsLeastPrivilege(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	kns := newNamespace(t)
	gw := newGateway(ns, "gw")
	gw.Spec.KernelNamespace = kns
	require.NoError(t, k8s.Create(ctx, gw))
	sa := "system:serviceaccount:" + ns + ":gw"

	home := exists(t, ns, "elastic-jupyter-gateway-gw", &rbacv1.RoleBinding{})
	assertControlledBy(t, home, gw)
	exists(t, kns, "elastic-jupyter-gateway-"+ns+".gw", &rbacv1.RoleBinding{})
	gatewayObserved(t, gw)

	can := func(verb, resource, group, namespace, sub string) func() bool {
		return func() bool {
			sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
				User: sa, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns},
				ResourceAttributes: &authzv1.ResourceAttributes{Verb: verb, Resource: resource, Group: group, Namespace: namespace, Subresource: sub},
			}}
			require.NoError(t, k8s.Create(ctx, sar))
			return sar.Status.Allowed
		}
	}
	g := ejv1.GroupVersion.Group
	allowed := []struct{ verb, resource, group, ns, sub string }{
		{"create", "jupyterkernels", g, kns, ""},
		{"delete", "jupyterkernels", g, kns, ""},
		{"watch", "jupyterkernels", g, kns, ""},
		{"patch", "jupyterkernels", g, kns, "status"},
		{"get", "secrets", "", kns, ""},
		{"create", "events", "events.k8s.io", kns, ""},
		{"get", "jupytergateways", g, ns, ""},
		{"watch", "jupyterkernelspecs", g, ns, ""},
		{"list", "jupyterkerneltemplates", g, ns, ""},
	}
	for _, a := range allowed {
		require.Eventually(t, can(a.verb, a.resource, a.group, a.ns, a.sub), wait, poll, "the gateway may %s %s/%s in %s", a.verb, a.resource, a.sub, a.ns)
	}
	denied := []struct{ verb, resource, group, ns, sub string }{
		{"list", "secrets", "", kns, ""},
		{"get", "secrets", "", ns, ""},
		{"create", "pods", "", kns, ""},
		{"create", "jupyterkernels", g, ns, ""},
		{"update", "jupytergateways", g, ns, ""},
		{"create", "jupyterkernelspecs", g, ns, ""},
		{"get", "jupyterkernels", g, "default", ""},
	}
	for _, d := range denied {
		assert.False(t, can(d.verb, d.resource, d.group, d.ns, d.sub)(), "the gateway may not %s %s in %s", d.verb, d.resource, d.ns)
	}

	// spec.clusterRole replaces the Roles.
	cr := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "gateway-extra-" + ns}, Rules: []rbacv1.PolicyRule{
		{APIGroups: []string{g}, Resources: []string{"jupyterkernels"}, Verbs: []string{"get", "list", "watch"}},
	}}
	require.NoError(t, k8s.Create(ctx, cr))
	update(t, gw, func(g *ejv1.JupyterGateway) { g.Spec.ClusterRole = ptr.To(cr.Name) })
	eventually(t, types.NamespacedName{Namespace: kns, Name: "elastic-jupyter-gateway-" + ns + ".gw"}, &rbacv1.RoleBinding{}, func(rb *rbacv1.RoleBinding) bool {
		return rb.RoleRef.Kind == "ClusterRole" && rb.RoleRef.Name == cr.Name
	}, "the kernel namespace's binding refers to the ClusterRole")
	gone(t, kns, "elastic-jupyter-gateway-"+ns+".gw", &rbacv1.Role{})
	gone(t, ns, "elastic-jupyter-gateway-gw", &rbacv1.Role{})

	// Deleting the gateway removes its RBAC in the other namespace too.
	require.NoError(t, k8s.Delete(ctx, gw))
	gone(t, kns, "elastic-jupyter-gateway-"+ns+".gw", &rbacv1.RoleBinding{})
	gone(t, ns, gw.Name, &ejv1.JupyterGateway{})
}
