package chart

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// claimWant is the PersistentVolumeClaim a team's state should render.
type claimWant struct {
	ns, name     string
	accessModes  []corev1.PersistentVolumeAccessMode
	size         string
	storageClass *string // nil: left out, for the cluster's default class
}

// stateWant is a kernelspec's rendered spec.state; a nil *stateWant is none.
type stateWant struct{ volume, maxBytes string }

// claimsOf is every rendered PersistentVolumeClaim.
func claimsOf(t *testing.T, objs []*unstructured.Unstructured) []*corev1.PersistentVolumeClaim {
	t.Helper()
	return ofKind[corev1.PersistentVolumeClaim](t, objs, "PersistentVolumeClaim")
}

// assertClaim checks a rendered claim against w: its access modes, size and class, kept on
// uninstall, labelled with its team.
func assertClaim(t *testing.T, objs []*unstructured.Unstructured, team string, w claimWant) {
	t.Helper()
	pvc := named[corev1.PersistentVolumeClaim](t, objs, "PersistentVolumeClaim", w.ns, w.name)
	id := w.ns + "/" + w.name
	assert.Equal(t, w.accessModes, pvc.Spec.AccessModes, "%s: access modes", id)
	q := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	assert.Zero(t, q.Cmp(resource.MustParse(w.size)), "%s requests %s, not %s", id, w.size, q.String())
	assert.Equal(t, w.storageClass, pvc.Spec.StorageClassName, "%s: storage class (nil: the cluster's default; \"\" would be no class)", id)
	assert.Equal(t, "keep", pvc.Annotations["helm.sh/resource-policy"], "%s: users' saved variables survive an uninstall", id)
	assert.Equal(t, team, pvc.Labels["kubeflow.tkestack.io/team"], id)
}

// assertKernelspecState checks a rendered kernelspec's spec.state against w (nil: none).
func assertKernelspecState(t *testing.T, ks *ejv1.JupyterKernelSpec, w *stateWant) {
	t.Helper()
	id := ks.Namespace + "/" + ks.Name
	if w == nil {
		assert.Nil(t, ks.Spec.State, "%s has no spec.state", id)
		return
	}
	if !assert.NotNil(t, ks.Spec.State, "%s has spec.state", id) {
		return
	}
	assert.Equal(t, w.volume, ks.Spec.State.Volume, "%s: spec.state.volume", id)
	if assert.NotNil(t, ks.Spec.State.MaxBytes, "%s: spec.state.maxBytes is rendered", id) {
		assert.Zero(t, ks.Spec.State.MaxBytes.Cmp(resource.MustParse(w.maxBytes)), "%s: spec.state.maxBytes is %s, not %s", id, w.maxBytes, ks.Spec.State.MaxBytes.String())
	}
}

var rwx = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}

// A team's state: its claim in the team's first namespace (unless create: false), and spec.state
// on each of its kernelspecs unless one opts out; a kernelspec's maxBytes overrides the team's.
func TestTeamStateRendersItsClaimAndEachKernelspecsState(t *testing.T) {
	const two = "teams:\n  - name: a\n    namespaces: [team-a, team-a-dev]\n    state: %s\n    kernelspecs:\n      - {name: cpu, gpus: 0}\n      - {name: gpu, gpus: 1%s}\n"
	team := func(state, gpuKernelspec string) string { return fmt.Sprintf(two, state, gpuKernelspec) }
	defaultClaim := &claimWant{"team-a", "kernel-state", rwx, "10Gi", nil}
	defaultState := &stateWant{"kernel-state", "256Mi"}
	for name, c := range map[string]struct {
		values string
		set    map[string]string
		claim  *claimWant // nil: no claim at all
		cpu    *stateWant
		gpu    *stateWant
	}{
		"enabled with the chart's defaults": {
			values: team("{enabled: true}", ""),
			claim:  defaultClaim, cpu: defaultState, gpu: defaultState,
		},
		"not enabled (the chart's default)": {
			values: team("{}", ""),
		},
		"enabled with --set": {
			values: team("{}", ""), set: map[string]string{"teams[0].state.enabled": "true"},
			claim: defaultClaim, cpu: defaultState, gpu: defaultState,
		},
		"a kernelspec opts out": {
			values: team("{enabled: true}", ", state: {enabled: false}"),
			claim:  defaultClaim, cpu: defaultState, gpu: nil,
		},
		"a kernelspec opts out with --set": {
			values: team("{enabled: true}", ""), set: map[string]string{"teams[0].kernelspecs[0].state.enabled": "false"},
			claim: defaultClaim, cpu: nil, gpu: defaultState,
		},
		"a kernelspec's own maxBytes": {
			values: team("{enabled: true}", ", state: {maxBytes: 2Gi}"),
			claim:  defaultClaim, cpu: defaultState, gpu: &stateWant{"kernel-state", "2Gi"},
		},
		"a kernelspec's state: {enabled: true} is the team's": {
			values: team("{enabled: true, maxBytes: 512Mi}", ", state: {enabled: true}"),
			claim:  defaultClaim, cpu: &stateWant{"kernel-state", "512Mi"}, gpu: &stateWant{"kernel-state", "512Mi"},
		},
		"the team's maxBytes as a number of bytes": {
			values: team("{enabled: true, maxBytes: 1073741824}", ""),
			claim:  defaultClaim, cpu: &stateWant{"kernel-state", "1Gi"}, gpu: &stateWant{"kernel-state", "1Gi"},
		},
		"create: false uses an existing claim": {
			values: team("{enabled: true, create: false, claimName: shared-state}", ""),
			claim:  nil, cpu: &stateWant{"shared-state", "256Mi"}, gpu: &stateWant{"shared-state", "256Mi"},
		},
		"a storage class, a name and a size": {
			values: team("{enabled: true, claimName: vars, storageClassName: cephfs, size: 50Gi}", ""),
			claim:  &claimWant{"team-a", "vars", rwx, "50Gi", ptr.To("cephfs")},
			cpu:    &stateWant{"vars", "256Mi"}, gpu: &stateWant{"vars", "256Mi"},
		},
		"an empty storage class is left out": {
			values: team("{enabled: true, storageClassName: \"\"}", ""),
			claim:  defaultClaim, cpu: defaultState, gpu: defaultState,
		},
		"ReadWriteOnce, for kernels on one node": {
			values: team("{enabled: true, accessModes: [ReadWriteOnce]}", ""),
			claim:  &claimWant{"team-a", "kernel-state", []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, "10Gi", nil},
			cpu:    defaultState, gpu: defaultState,
		},
		"enabled in teamDefaults": {
			values: "teamDefaults: {state: {enabled: true, maxBytes: 1Gi}}\n" + team("{size: 20Gi}", ""),
			claim:  &claimWant{"team-a", "kernel-state", rwx, "20Gi", nil},
			cpu:    &stateWant{"kernel-state", "1Gi"}, gpu: &stateWant{"kernel-state", "1Gi"},
		},
		"enabled in teamDefaults, turned off by the team": {
			values: "teamDefaults: {state: {enabled: true}}\n" + team("{enabled: false}", ""),
		},
	} {
		t.Run(name, func(t *testing.T) {
			objs := objects(t, render(t, []string{valuesFile(t, c.values)}, c.set))
			if c.claim == nil {
				assert.Empty(t, claimsOf(t, objs), "no claim is rendered")
			} else {
				require.Len(t, claimsOf(t, objs), 1, "one claim, in the team's first namespace")
				assertClaim(t, objs, "a", *c.claim)
			}
			assertKernelspecState(t, named[ejv1.JupyterKernelSpec](t, objs, "JupyterKernelSpec", "team-a", "cpu"), c.cpu)
			assertKernelspecState(t, named[ejv1.JupyterKernelSpec](t, objs, "JupyterKernelSpec", "team-a", "gpu"), c.gpu)
		})
	}
}

// The claim is a core object: the first install, which leaves the team's custom resources for
// the upgrade, creates it already.
func TestFirstInstallCreatesTheStateClaim(t *testing.T) {
	out, err := renderE(t, []string{valuesFile(t, "teams: [{name: a, namespaces: [team-a], state: {enabled: true}}]")}, nil)
	require.NoError(t, err)
	objs := objects(t, out)
	assert.Empty(t, ofKind[ejv1.JupyterKernelSpec](t, objs, "JupyterKernelSpec"))
	assertClaim(t, objs, "a", claimWant{"team-a", "kernel-state", rwx, "10Gi", nil})
}
