package controller_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

func TestKeysAndTokensAppearInNoPodCRNorLog(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	require.NoError(t, k8s.Create(ctx, newGateway(ns, "gw")))
	nb := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "nb", Namespace: ns}}
	nb.Spec.Gateway = &corev1.ObjectReference{Name: "gw"}
	require.NoError(t, k8s.Create(ctx, nb))
	k := kernelFixture(t, ns, "deadbeef-0000-4000-8000-000000000001")
	require.NoError(t, k8s.Create(ctx, k))
	kubeletRun(t, kernelPod(t, k, ""), "10.4.0.1")
	kernelIn(t, k, phaseIs(ejv1.KernelRunning), "running")
	update(t, k, func(k *ejv1.JupyterKernel) { k.Spec.Suspend = true })
	kernelIn(t, k, phaseIs(ejv1.KernelSuspended), "suspended")
	exists(t, ns, "nb", &appsv1.Deployment{})

	// Every secret value the controller made, in every namespace the tests used so far.
	secrets := &corev1.SecretList{}
	require.NoError(t, k8s.List(ctx, secrets, client.MatchingLabels{ejv1.LabelManagedBy: ejv1.ManagedBy}))
	var values []string
	for _, s := range secrets.Items {
		if s.Labels[ejv1.LabelComponent] == ejv1.ComponentKernelConnection {
			var conn struct{ Key string }
			require.NoError(t, json.Unmarshal(s.Data[ejv1.ConnectionFileKey], &conn))
			require.Len(t, conn.Key, 64)
			values = append(values, conn.Key)
		} else if tok := string(s.Data["token"]); len(tok) == 64 {
			values = append(values, tok) // random tokens; literal ones live in their CRs by the user's choice
		}
	}
	require.NotEmpty(t, values)

	// Everything else that is readable: pods, Deployments, the five kinds, events, the logs.
	lists := []client.ObjectList{
		&corev1.PodList{}, &appsv1.DeploymentList{}, &corev1.ConfigMapList{}, &eventsv1.EventList{}, &corev1.EventList{},
		&ejv1.JupyterKernelList{}, &ejv1.JupyterGatewayList{}, &ejv1.JupyterNotebookList{},
		&ejv1.JupyterKernelSpecList{}, &ejv1.JupyterKernelTemplateList{},
	}
	for _, l := range lists {
		require.NoError(t, k8s.List(ctx, l))
		assertNotIn(t, l, values...)
	}
	log := logs.String()
	require.NotEmpty(t, log, "the controller logs")
	for _, v := range values {
		assert.False(t, strings.Contains(log, v), "a key or token appears in the controller's logs")
	}
}
