package chart

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/webhook"
)

// kernelspecGPUs is what a values file says about the GPUs of one kernelspec.
type kernelspecGPUs struct {
	ns, name string
	// gpus is the kernelspec's own count, nil when it leaves gpus out.
	gpus *int32
	// kernelGets is what each of its kernels gets: gpus, else the team's gpu.defaultPerKernel.
	kernelGets int64
	// resource is the team's gpu.resourceName.
	resource corev1.ResourceName
}

func (k kernelspecGPUs) String() string { return k.ns + "/" + k.name }

// readValues decodes a values file.
func readValues(t *testing.T, file string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	require.NoError(t, err)
	v := map[string]any{}
	require.NoError(t, yaml.Unmarshal(data, &v), file)
	return v
}

// lookup is the value at path in the first of layers that has it (a team, then the values
// file's teamDefaults, then the chart's): maps merge key by key, lists are replaced, as Helm
// and the chart merge them.
func lookup(layers []map[string]any, path ...string) (any, bool) {
	for _, l := range layers {
		var v any = l
		ok := true
		for _, k := range path {
			m, isMap := v.(map[string]any)
			if !isMap {
				ok = false
				break
			}
			if v, ok = m[k]; !ok {
				break
			}
		}
		if ok {
			return v, true
		}
	}
	return nil, false
}

// wantGPUs reads the kernelspecs of every team of the values file (over the chart's
// values.yaml) and the GPUs each says, independently of the chart's templates.
func wantGPUs(t *testing.T, file string) []kernelspecGPUs {
	t.Helper()
	var out []kernelspecGPUs
	for _, team := range teamsOf(t, file) {
		get := func(path ...string) any {
			v, ok := team.get(path...)
			require.True(t, ok, "%s has %s, or a default", team, strings.Join(path, "."))
			return v
		}
		def, ok := get("gpu", "defaultPerKernel").(float64)
		require.True(t, ok, "%s: gpu.defaultPerKernel is a number", team)
		res, _ := get("gpu", "resourceName").(string)
		get("kernelspecs")
		for j, spec := range team.kernelspecs {
			name, _ := spec["name"].(string)
			require.NotEmpty(t, name, "%s: kernelspecs[%d].name", team, j)
			w := kernelspecGPUs{ns: team.namespaces[0], name: name, kernelGets: int64(def), resource: corev1.ResourceName(res)}
			if g, ok := spec["gpus"]; ok {
				n, isNumber := g.(float64)
				require.True(t, isNumber, "%s: %s gpus is a number", team, w)
				w.gpus = ptr.To(int32(n))
				w.kernelGets = int64(n)
			}
			out = append(out, w)
		}
	}
	return out
}

// policyOf is the rendered team policy, read by the webhook's own parser.
func policyOf(t *testing.T, objs []*unstructured.Unstructured) *webhook.Policy {
	t.Helper()
	cm := named[corev1.ConfigMap](t, objs, "ConfigMap", namespace, "elastic-jupyter-policy")
	policy, err := webhook.ParsePolicy([]byte(cm.Data[webhook.PolicyKey]))
	require.NoError(t, err, "the webhook accepts the rendered policy")
	return policy
}

// extendedResources are the extended resources (GPUs, MIG slices) of a resource list, as whole
// numbers.
func extendedResources(rl corev1.ResourceList) map[corev1.ResourceName]int64 {
	out := map[corev1.ResourceName]int64{}
	for name, q := range rl {
		if strings.Contains(string(name), "/") && !strings.Contains(string(name), "kubernetes.io/") {
			out[name] = q.Value()
		}
	}
	return out
}

// assertKernelGets checks that the webhook's mutation of a kernel pod of ks, under the rendered
// policy, gives it n of resource and the GPU placement when n > 0, and no GPU and no GPU
// placement when n is 0.
func assertKernelGets(t *testing.T, policy *webhook.Policy, ks *ejv1.JupyterKernelSpec, resource corev1.ResourceName, n int64) {
	t.Helper()
	id := ks.Namespace + "/" + ks.Name
	pod, err := webhook.MutateKernelPod(kernelPod(ks.Namespace, ks), ks, policy.For(ks.Namespace), webhook.MutateOptions{})
	require.NoError(t, err, "%s: the webhook admits its kernel pod", id)
	require.Len(t, pod.Spec.Containers, 1)
	r := pod.Spec.Containers[0].Resources
	if n == 0 {
		assert.Empty(t, extendedResources(r.Limits), "%s: its kernels get no GPU limit", id)
		assert.Empty(t, extendedResources(r.Requests), "%s: its kernels get no GPU request", id)
		assert.NotContains(t, pod.Spec.Tolerations, webhook.DefaultGPUToleration, "%s: its kernels tolerate no GPU taint", id)
		assert.Empty(t, pod.Spec.NodeSelector, "%s: its kernels are not sent to the GPU nodes", id)
		return
	}
	want := map[corev1.ResourceName]int64{resource: n}
	assert.Equal(t, want, extendedResources(r.Limits), "%s: its kernels get %d %s", id, n, resource)
	assert.Equal(t, want, extendedResources(r.Requests), "%s: its kernels request %d %s", id, n, resource)
	assert.Contains(t, pod.Spec.Tolerations, webhook.DefaultGPUToleration, "%s: its kernels tolerate the GPU taint", id)
}

// assertKernelspecGPUs checks the rendered kernelspecs against want: exactly want's are rendered,
// each with the gpus its values say (an explicit 0 present and 0, a left-out count left out),
// and the webhook gives each one's kernels what the values say.
func assertKernelspecGPUs(t *testing.T, objs []*unstructured.Unstructured, want []kernelspecGPUs) {
	t.Helper()
	policy := policyOf(t, objs)
	var rendered, wanted []string
	for _, ks := range ofKind[ejv1.JupyterKernelSpec](t, objs, "JupyterKernelSpec") {
		rendered = append(rendered, ks.Namespace+"/"+ks.Name)
	}
	for _, w := range want {
		wanted = append(wanted, w.String())
	}
	require.ElementsMatch(t, wanted, rendered, "the chart renders the kernelspecs the values list")
	for _, w := range want {
		ks := named[ejv1.JupyterKernelSpec](t, objs, "JupyterKernelSpec", w.ns, w.name)
		require.NotNil(t, ks.Spec.Resources, "%s has resources", w)
		if w.gpus == nil {
			assert.Nil(t, ks.Spec.Resources.GPUs, "%s leaves gpus out: the webhook gives its kernels the team's default", w)
		} else if assert.NotNil(t, ks.Spec.Resources.GPUs, "%s says gpus: %d and is rendered with it", w, *w.gpus) {
			assert.Equal(t, *w.gpus, *ks.Spec.Resources.GPUs, "%s says gpus: %d", w, *w.gpus)
		}
		assertKernelGets(t, policy, ks, w.resource, w.kernelGets)
	}
}

// Every values file, as it is: each kernelspec is rendered with the gpus it says (gpus: 0
// present and 0), and the webhook gives its kernels that many, or the team's default when it
// says none.
func TestEveryValuesFileGivesEachKernelspecItsGPUs(t *testing.T) {
	for _, f := range valuesFiles(t) {
		t.Run(filepath.Base(f), func(t *testing.T) {
			want := wantGPUs(t, f)
			require.NotEmpty(t, want, "%s has kernelspecs", f)
			assertKernelspecGPUs(t, objects(t, render(t, []string{f}, nil)), want)
		})
	}
}

// A kernelspec's gpus: 0 means no GPU, whatever the team's default: from a values file, from
// --set and from the chart's own default kernelspec.
func TestAKernelspecsZeroGPUsMeansNoGPU(t *testing.T) {
	team := func(gpu, kernelspecs string) string {
		return fmt.Sprintf("teams:\n  - name: vision\n    namespaces: [team-vision]\n    gpu: %s\n%s", gpu, kernelspecs)
	}
	for name, c := range map[string]struct {
		values     string
		set        map[string]string
		kernelspec string
		gpus       *int32 // the rendered spec.resources.gpus
		kernelGets int64
	}{
		"gpus: 0 in a team whose default is 1": {
			values:     team("{defaultPerKernel: 1, maxPerKernel: 2}", "    kernelspecs: [{name: cpu, gpus: 0}]"),
			kernelspec: "cpu", gpus: ptr.To[int32](0), kernelGets: 0,
		},
		"gpus: 0 set on the command line in a team whose default is 1": {
			values:     team("{defaultPerKernel: 1, maxPerKernel: 2}", "    kernelspecs: [{name: cpu}]"),
			set:        map[string]string{"teams[0].kernelspecs[0].gpus": "0"},
			kernelspec: "cpu", gpus: ptr.To[int32](0), kernelGets: 0,
		},
		"gpus: 0 in a team that takes its default of 1 from teamDefaults": {
			values:     "teamDefaults: {gpu: {defaultPerKernel: 1}}\n" + team("{maxPerKernel: 2}", "    kernelspecs: [{name: cpu, gpus: 0}]"),
			kernelspec: "cpu", gpus: ptr.To[int32](0), kernelGets: 0,
		},
		"the chart's default kernelspec (gpus: 0) in a team whose default is 1": {
			values:     team("{defaultPerKernel: 1, maxPerKernel: 2}", ""),
			kernelspec: "python3", gpus: ptr.To[int32](0), kernelGets: 0,
		},
		"gpus: 0 in a team that may have no GPU": {
			values:     team("{defaultPerKernel: 0, maxPerKernel: 0}", "    kernelspecs: [{name: cpu, gpus: 0}]"),
			kernelspec: "cpu", gpus: ptr.To[int32](0), kernelGets: 0,
		},
		"gpus left out: the team's default of 1": {
			values:     team("{defaultPerKernel: 1, maxPerKernel: 2}", "    kernelspecs: [{name: dflt}]"),
			kernelspec: "dflt", gpus: nil, kernelGets: 1,
		},
		"gpus: 2 in a team whose default is 1": {
			values:     team("{defaultPerKernel: 1, maxPerKernel: 2}", "    kernelspecs: [{name: two, gpus: 2}]"),
			kernelspec: "two", gpus: ptr.To[int32](2), kernelGets: 2,
		},
	} {
		t.Run(name, func(t *testing.T) {
			objs := objects(t, render(t, []string{valuesFile(t, c.values)}, c.set))
			ks := named[ejv1.JupyterKernelSpec](t, objs, "JupyterKernelSpec", "team-vision", c.kernelspec)
			require.NotNil(t, ks.Spec.Resources)
			if c.gpus == nil {
				assert.Nil(t, ks.Spec.Resources.GPUs, "a kernelspec that says no gpus is rendered without")
			} else if assert.NotNil(t, ks.Spec.Resources.GPUs, "gpus: %d is rendered", *c.gpus) {
				assert.Equal(t, *c.gpus, *ks.Spec.Resources.GPUs)
			}
			assertKernelGets(t, policyOf(t, objs), ks, "nvidia.com/gpu", c.kernelGets)
		})
	}
}
