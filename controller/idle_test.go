package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// idleFor is how long nothing may change once everything has settled.
const idleFor = 10 * time.Second

func TestIdleControllerWritesNothing(t *testing.T) {
	ns := settledNamespace(t)
	changes := watchNamespace(t, ns)
	select {
	case c := <-changes:
		t.Fatalf("an object changed while nothing happened (a hot loop or a needless write): %s", c)
	case <-time.After(idleFor):
	}
}

// settledNamespace makes a gateway, a notebook, a running and a suspended kernel, and waits
// until every status describes the current generation and kube-controller-manager has made
// the Deployments' pods.
func settledNamespace(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	ns := newNamespace(t)
	gw := newGateway(ns, "gw")
	require.NoError(t, k8s.Create(ctx, gw))
	nb := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "nb", Namespace: ns}}
	nb.Spec.Gateway = &corev1.ObjectReference{Name: "gw"}
	require.NoError(t, k8s.Create(ctx, nb))
	running := kernelFixture(t, ns, "11111111-2222-4333-8444-555555555555")
	require.NoError(t, k8s.Create(ctx, running))
	kubeletRun(t, kernelPod(t, running, ""), "10.3.0.1")
	suspended := kernelFixture(t, ns, "66666666-7777-4888-8999-000000000000")
	suspended.Spec.Suspend = true
	require.NoError(t, k8s.Create(ctx, suspended))

	// Settled: every status describes the current generation, and kube-controller-manager
	// has made the Deployments' pods.
	kernelIn(t, running, phaseIs(ejv1.KernelRunning), "running")
	kernelIn(t, suspended, phaseIs(ejv1.KernelSuspended), "suspended")
	eventually(t, client.ObjectKeyFromObject(gw), &ejv1.JupyterGateway{}, func(g *ejv1.JupyterGateway) bool {
		return g.Status.ObservedGeneration == g.Generation && g.Status.KernelsRunning == 1 && g.Status.KernelsSuspended == 1
	}, "gateway settled")
	eventually(t, client.ObjectKeyFromObject(nb), &ejv1.JupyterNotebook{}, func(n *ejv1.JupyterNotebook) bool {
		return n.Status.ObservedGeneration == n.Generation && n.Status.Phase == ejv1.NotebookPending
	}, "notebook settled")
	for _, name := range []string{"gw", "nb"} {
		eventually(t, client.ObjectKey{Namespace: ns, Name: name}, &appsv1.Deployment{}, func(d *appsv1.Deployment) bool {
			return d.Status.ObservedGeneration == d.Generation && d.Status.Replicas == 1
		}, "deployment %s settled", name)
	}
	for _, name := range []string{"gpu"} {
		eventually(t, client.ObjectKey{Namespace: ns, Name: name}, &ejv1.JupyterKernelTemplate{}, func(o *ejv1.JupyterKernelTemplate) bool {
			_, ok := readyReason(o)
			return ok
		}, "template settled")
	}
	eventually(t, client.ObjectKey{Namespace: ns, Name: "python3-gpu"}, &ejv1.JupyterKernelSpec{}, func(o *ejv1.JupyterKernelSpec) bool {
		_, ok := readyReason(o)
		return ok
	}, "kernelspec settled")

	return ns
}

// watchNamespace reports every change to the objects of ns from now on.
func watchNamespace(t *testing.T, ns string) <-chan string {
	t.Helper()
	ctx := context.Background()
	lists := []client.ObjectList{
		&ejv1.JupyterGatewayList{}, &ejv1.JupyterNotebookList{}, &ejv1.JupyterKernelList{},
		&ejv1.JupyterKernelSpecList{}, &ejv1.JupyterKernelTemplateList{},
		&appsv1.DeploymentList{}, &corev1.ServiceList{}, &corev1.ServiceAccountList{}, &corev1.SecretList{},
		&corev1.ConfigMapList{}, &corev1.PodList{}, &rbacv1.RoleList{}, &rbacv1.RoleBindingList{},
	}
	changes := make(chan string, 100)
	wctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	for _, l := range lists {
		require.NoError(t, k8s.List(ctx, l, client.InNamespace(ns)))
		w, err := k8s.Watch(wctx, l, client.InNamespace(ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: l.GetResourceVersion()}})
		require.NoError(t, err)
		t.Cleanup(w.Stop)
		go func(l client.ObjectList) {
			for ev := range w.ResultChan() {
				if ev.Type == watch.Bookmark {
					continue
				}
				desc := fmt.Sprintf("%s %T", ev.Type, ev.Object)
				if o, ok := ev.Object.(client.Object); ok {
					desc = fmt.Sprintf("%s %T %s (resourceVersion %s)", ev.Type, o, o.GetName(), o.GetResourceVersion())
				}
				select {
				case changes <- desc:
				default: // the first change already fails the test
				}
			}
		}(l)
	}
	return changes
}
