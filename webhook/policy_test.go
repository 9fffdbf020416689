package webhook

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
)

// contractPolicy is the example of docs/contracts.md, "Team policy".
const contractPolicy = `
# Applies to namespaces that no team lists.
default:
  gpu:
    resourceName: nvidia.com/gpu
    defaultPerKernel: 0
    maxPerKernel: 1
    clientMayRequest: false
teams:
  - name: vision                      # named in error messages
    namespaces: [team-vision]         # a namespace belongs to at most one team
    gpu:
      resourceName: nvidia.com/gpu    # or a MIG profile: nvidia.com/mig-1g.10gb
      defaultPerKernel: 1             # for kernelspecs that do not say
      maxPerKernel: 2                 # a kernel asking for more is refused
      clientMayRequest: true          # honour the client's KERNEL_GPUS up to maxPerKernel
    maxKernelsPerUser: 4              # a user's kernels, suspended ones included
    maxGPUsPerUser: 2                 # GPUs a user's kernels hold at once (a suspended kernel holds none)
    tolerations:                      # added (with nvidia.com/gpu Exists NoSchedule) when the pod gets a GPU
      - {key: dedicated, operator: Equal, value: vision, effect: NoSchedule}
    nodeSelector:                     # merged when the pod gets a GPU
      nvidia.com/gpu.product: NVIDIA-A100-SXM4-40GB
  - name: nlp
    namespaces: [team-nlp, team-nlp-dev]
    gpu: {resourceName: nvidia.com/mig-1g.10gb, maxPerKernel: 1}
`

func TestParsePolicyResolvesNamespaces(t *testing.T) {
	p, err := ParsePolicy([]byte(contractPolicy))
	require.NoError(t, err)
	cases := []struct {
		namespace string
		want      Rules
	}{
		{"team-vision", Rules{Team: "vision", ResourceName: "nvidia.com/gpu", DefaultPerKernel: 1, MaxPerKernel: 2, ClientMayRequest: true,
			Tolerations:       []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "vision", Effect: corev1.TaintEffectNoSchedule}},
			NodeSelector:      map[string]string{"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"},
			MaxKernelsPerUser: 4, MaxGPUsPerUser: 2}},
		{"team-nlp-dev", Rules{Team: "nlp", ResourceName: "nvidia.com/mig-1g.10gb", MaxPerKernel: 1, MaxKernelsPerUser: -1, MaxGPUsPerUser: -1}},
		{"elsewhere", Rules{Team: DefaultTeam, ResourceName: "nvidia.com/gpu", MaxPerKernel: 1, MaxKernelsPerUser: -1, MaxGPUsPerUser: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.namespace, func(t *testing.T) {
			assert.Equal(t, tc.want, p.For(tc.namespace))
		})
	}
}

func TestParsePolicyDefaults(t *testing.T) {
	builtIn := Rules{Team: DefaultTeam, ResourceName: DefaultGPUResource, MaxPerKernel: -1, MaxKernelsPerUser: -1, MaxGPUsPerUser: -1}
	for name, data := range map[string]string{
		"empty":            "",
		"blank":            "  \n",
		"teams only":       "teams:\n  - name: a\n    namespaces: [a]\n",
		"an empty default": "default: {}\n",
	} {
		t.Run(name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(data))
			require.NoError(t, err)
			assert.Equal(t, builtIn, p.For("elsewhere"), "no GPU by default, no limit, clients may not choose")
		})
	}
	var none *Policy
	assert.Equal(t, builtIn, none.For("x"))
}

func TestParsePolicyRefusesBadInput(t *testing.T) {
	cases := []struct {
		name string
		data string
		want []string // every one appears in the error
	}{
		{"an unknown field, with its path", "teams:\n  - name: a\n    namespaces: [x]\n    gpus: {maxPerKernel: 1}\n", []string{`unknown field "teams[0].gpus"`}},
		{"a misspelt nested field", "default:\n  gpu: {maxPerKernal: 1}\n", []string{`unknown field "default.gpu.maxPerKernal"`}},
		{"a misspelt toleration field", "default:\n  tolerations: [{key: a, opertor: Exists}]\n", []string{`unknown field "default.tolerations[0].opertor"`}},
		{"a duplicate key", "default:\n  gpu: {maxPerKernel: 1}\n  gpu: {maxPerKernel: 2}\n", []string{"not valid YAML", "already set"}},
		{"a wrong type", "default:\n  gpu: {maxPerKernel: two}\n", []string{"default.gpu.maxPerKernel"}},
		{"not YAML", "teams: [\n", []string{"not valid YAML"}},
		{"a namespace YAML reads as a boolean", "teams:\n  - name: a\n    namespaces: [no]\n", []string{"teams.namespaces", "quote a name"}},
		{"a negative maximum", "teams:\n  - name: a\n    namespaces: [x]\n    gpu: {maxPerKernel: -1}\n", []string{"teams[0].gpu.maxPerKernel", "must be 0 or more"}},
		{"a negative default", "default:\n  gpu: {defaultPerKernel: -1}\n", []string{"default.gpu.defaultPerKernel"}},
		{"a default over the maximum", "default:\n  gpu: {defaultPerKernel: 2, maxPerKernel: 1}\n", []string{"default.gpu.defaultPerKernel", "must not exceed maxPerKernel (1)"}},
		{"a resource name without a domain", "default:\n  gpu: {resourceName: gpu}\n", []string{"default.gpu.resourceName", "extended resource name"}},
		{"a namespace in two teams", "teams:\n  - name: a\n    namespaces: [x]\n  - name: b\n    namespaces: [x]\n", []string{"teams[1].namespaces[0]", `already in team "a"`}},
		{"a team without a name", "teams:\n  - namespaces: [x]\n", []string{"teams[0].name", "Required"}},
		{"two teams with one name", "teams:\n  - name: a\n    namespaces: [x]\n  - name: a\n    namespaces: [z]\n", []string{"teams[1].name", "Duplicate"}},
		{"a team named default", "teams:\n  - name: default\n    namespaces: [x]\n", []string{"teams[0].name"}},
		{"a team without namespaces", "teams:\n  - name: a\n", []string{"teams[0].namespaces", "Required"}},
		{"a bad namespace name", "teams:\n  - name: a\n    namespaces: [Team_A]\n", []string{"teams[0].namespaces[0]", "not a namespace name"}},
		{"a bad toleration operator", "default:\n  tolerations: [{key: a, operator: Maybe}]\n", []string{"default.tolerations[0].operator", "Unsupported value"}},
		{"a toleration Exists with a value", "default:\n  tolerations: [{key: a, operator: Exists, value: b}]\n", []string{"default.tolerations[0].value"}},
		{"a bad toleration effect", "default:\n  tolerations: [{key: a, operator: Exists, effect: Never}]\n", []string{"default.tolerations[0].effect"}},
		{"a bad node selector value", "default:\n  nodeSelector: {gpu: 'a b'}\n", []string{"default.nodeSelector[gpu]", "not a label value"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tc.data))
			require.Error(t, err)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), PolicyKey)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}
