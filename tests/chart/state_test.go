package chart

import (
	"fmt"
	"path/filepath"
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

// valuesTeam is one team of a values file, read over the file's teamDefaults and the chart's
// values.yaml as the chart merges them, independently of its templates.
type valuesTeam struct {
	file, name  string
	namespaces  []string
	layers      []map[string]any
	kernelspecs []map[string]any
}

func (v valuesTeam) get(path ...string) (any, bool) { return lookup(v.layers, path...) }

func (v valuesTeam) String() string { return v.file + ": team " + v.name }

// kernelGPUs is what each kernel of kernelspec k gets: its gpus, else the team's default.
func (v valuesTeam) kernelGPUs(k map[string]any) float64 {
	if g, ok := k["gpus"].(float64); ok {
		return g
	}
	def, _ := v.get("gpu", "defaultPerKernel")
	n, _ := def.(float64)
	return n
}

// hasGPUKernels says whether a kernel of the team gets a GPU.
func (v valuesTeam) hasGPUKernels() bool {
	for _, k := range v.kernelspecs {
		if v.kernelGPUs(k) > 0 {
			return true
		}
	}
	return false
}

// teamsOf is every team of a values file.
func teamsOf(t *testing.T, file string) []valuesTeam {
	t.Helper()
	chartDefaults, _ := readValues(t, filepath.Join(chartDir, "values.yaml"))["teamDefaults"].(map[string]any)
	require.NotEmpty(t, chartDefaults)
	vals := readValues(t, file)
	fileDefaults, _ := vals["teamDefaults"].(map[string]any)
	teams, _ := vals["teams"].([]any)
	var out []valuesTeam
	for i, tm := range teams {
		team, ok := tm.(map[string]any)
		require.True(t, ok, "%s: teams[%d] is a map", file, i)
		v := valuesTeam{file: filepath.Base(file), layers: []map[string]any{team, fileDefaults, chartDefaults}}
		v.name, _ = team["name"].(string)
		nss, _ := team["namespaces"].([]any)
		for _, ns := range nss {
			s, _ := ns.(string)
			v.namespaces = append(v.namespaces, s)
		}
		require.NotEmpty(t, v.namespaces, "%s: teams[%d].namespaces", file, i)
		specs, _ := v.get("kernelspecs")
		list, _ := specs.([]any)
		for _, k := range list {
			m, _ := k.(map[string]any)
			v.kernelspecs = append(v.kernelspecs, m)
		}
		out = append(out, v)
	}
	return out
}

// quantityOf is a quantity from values: "256Mi" or a number of bytes.
func quantityOf(t *testing.T, v any) resource.Quantity {
	t.Helper()
	switch q := v.(type) {
	case string:
		return resource.MustParse(q)
	case float64:
		return *resource.NewQuantity(int64(q), resource.BinarySI)
	}
	t.Fatalf("%v is not a quantity", v)
	return resource.Quantity{}
}

// Every values file, as it is: each team with GPU kernels suspends them (cullPolicy Suspend) and
// keeps their variables: a ReadWriteMany claim, named as its kernelspecs' spec.state.volume, in
// the namespace its gateway runs kernels in, and spec.state on every GPU kernelspec.
// cullConnected is rendered only where the file sets it. A team without state renders no claim
// and no spec.state.
func TestEveryValuesFileKeepsTheVariablesOfItsGPUTeams(t *testing.T) {
	for _, f := range valuesFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			objs := objects(t, render(t, []string{f}, nil))
			teams := teamsOf(t, f)
			require.NotEmpty(t, teams)
			claims := 0
			for _, team := range teams {
				gwName, _ := team.get("gateway", "name")
				gw := named[ejv1.JupyterGateway](t, objs, "JupyterGateway", team.namespaces[0], gwName.(string))
				kernelNS := gw.Namespace
				if gw.Spec.KernelNamespace != "" {
					kernelNS = gw.Spec.KernelNamespace
				}
				if v, ok := team.get("gateway", "cullConnected"); ok && v != nil {
					assert.Equal(t, ptr.To(v.(bool)), gw.Spec.CullConnected, "%s sets cullConnected", team)
				} else {
					assert.Nil(t, gw.Spec.CullConnected, "%s leaves cullConnected to the gateway's default for %s", team, gw.Spec.CullPolicy)
				}
				enabled, _ := team.get("state", "enabled")
				stateOn := enabled == true
				if team.hasGPUKernels() {
					assert.Equal(t, ejv1.CullPolicySuspend, gw.Spec.CullPolicy, "%s has GPU kernels: idle ones are suspended, and their GPUs go back", team)
					assert.True(t, stateOn, "%s has GPU kernels: its state keeps their variables across a suspension", team)
				}
				if !stateOn {
					for _, ns := range team.namespaces {
						for _, c := range claimsOf(t, objs) {
							assert.NotEqual(t, ns, c.Namespace, "%s has no state: no claim %s in %s", team, c.Name, ns)
						}
					}
					for _, k := range team.kernelspecs {
						assertKernelspecState(t, named[ejv1.JupyterKernelSpec](t, objs, "JupyterKernelSpec", team.namespaces[0], k["name"].(string)), nil)
					}
					continue
				}
				claimName, _ := team.get("state", "claimName")
				teamMax, _ := team.get("state", "maxBytes")
				for _, k := range team.kernelspecs {
					ks := named[ejv1.JupyterKernelSpec](t, objs, "JupyterKernelSpec", team.namespaces[0], k["name"].(string))
					own, _ := k["state"].(map[string]any)
					if own["enabled"] == false {
						assert.Zero(t, team.kernelGPUs(k), "%s: a GPU kernelspec keeps its variables (%s opts out)", team, ks.Name)
						assertKernelspecState(t, ks, nil)
						continue
					}
					max := teamMax
					if m, ok := own["maxBytes"]; ok {
						max = m
					}
					q := quantityOf(t, max)
					assertKernelspecState(t, ks, &stateWant{claimName.(string), q.String()})
					if ks.Spec.State == nil {
						continue
					}
					if create, _ := team.get("state", "create"); create == true {
						pvc := named[corev1.PersistentVolumeClaim](t, objs, "PersistentVolumeClaim", kernelNS, ks.Spec.State.Volume)
						assert.Contains(t, pvc.Spec.AccessModes, corev1.ReadWriteMany, "%s: kernels on several nodes share claim %s", team, pvc.Name)
						assert.Equal(t, "keep", pvc.Annotations["helm.sh/resource-policy"], "%s: claim %s survives an uninstall", team, pvc.Name)
					}
				}
				if create, _ := team.get("state", "create"); create == true {
					claims++
				}
			}
			assert.Len(t, claimsOf(t, objs), claims, "one claim per team whose state creates one")
		})
	}
}
