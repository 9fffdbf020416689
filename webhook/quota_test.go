package webhook

import (
	"testing"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

func TestValidateUserLimits(t *testing.T) {
	limited := Rules{Team: "vision", ResourceName: "nvidia.com/gpu", MaxPerKernel: -1, MaxKernelsPerUser: 3, MaxGPUsPerUser: 2}
	kernel := &ejv1.JupyterKernel{Spec: ejv1.JupyterKernelCRDSpec{User: "alice"}}
	cases := []struct {
		name     string
		k        *ejv1.JupyterKernel
		gpus     int32
		starting bool
		others   []UserKernel
		rules    Rules
		want     []string
	}{
		{"within both limits", kernel, 1, true, []UserKernel{{Name: "a", GPUs: 1}}, limited, nil},
		{"over the kernel limit", kernel, 0, true, []UserKernel{{Name: "a"}, {Name: "b", Suspended: true}, {Name: "c"}}, limited,
			[]string{"team vision allows at most 3 kernels per user (maxKernelsPerUser) and alice has 3: shut one down first"}},
		{"suspended kernels hold no GPU", kernel, 2, true, []UserKernel{{Name: "a", GPUs: 2, Suspended: true}}, limited, nil},
		{"over the GPU limit, naming what holds them", kernel, 1, true, []UserKernel{{Name: "a", GPUs: 1}, {Name: "b", GPUs: 1}}, limited,
			[]string{"team vision allows at most 2 nvidia.com/gpu per user (maxGPUsPerUser) and alice holds 2 (kernels a, b); this kernel asks for 1: shut a GPU kernel down, or wait for an idle one to be suspended"}},
		{"a resume counts GPUs, not kernels", kernel, 1, false, []UserKernel{{Name: "a"}, {Name: "b"}, {Name: "c", GPUs: 1}}, limited, nil},
		{"a resume over the GPU limit", kernel, 2, false, []UserKernel{{Name: "c", GPUs: 1}}, limited,
			[]string{"maxGPUsPerUser"}},
		{"a CPU kernel is never over the GPU limit", kernel, 0, true, []UserKernel{{Name: "a", GPUs: 5}}, limited, nil},
		{"no limits", kernel, 9, true, []UserKernel{{Name: "a", GPUs: 9}}, Rules{MaxKernelsPerUser: -1, MaxGPUsPerUser: -1}, nil},
		{"a kernel of no user", &ejv1.JupyterKernel{}, 9, true, []UserKernel{{Name: "a", GPUs: 9}}, limited, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateUserLimits(tc.k, tc.gpus, tc.starting, tc.others, tc.rules)
			if len(tc.want) == 0 {
				assert.Empty(t, errs)
				return
			}
			assert.Len(t, errs, len(tc.want))
			for i, w := range tc.want {
				assert.Equal(t, "spec.user", errs[i].Field)
				assert.Contains(t, errs[i].Detail, w)
			}
		})
	}
}

func TestKernelGPUs(t *testing.T) {
	spec := func(n *int32) *ejv1.JupyterKernelSpec {
		return &ejv1.JupyterKernelSpec{Spec: ejv1.JupyterKernelSpecSpec{Resources: &ejv1.KernelResources{GPUs: n}}}
	}
	asks := &ejv1.JupyterKernel{Spec: ejv1.JupyterKernelCRDSpec{Env: []corev1.EnvVar{{Name: KernelGPUsEnv, Value: "3"}}}}
	team := Rules{DefaultPerKernel: 1}
	assert.EqualValues(t, 1, KernelGPUs(&ejv1.JupyterKernel{}, nil, team), "the team's default")
	assert.EqualValues(t, 0, KernelGPUs(&ejv1.JupyterKernel{}, spec(ptr.To[int32](0)), team), "the kernelspec's explicit 0")
	assert.EqualValues(t, 1, KernelGPUs(asks, nil, team), "KERNEL_GPUS is ignored where clients may not choose")
	team.ClientMayRequest = true
	assert.EqualValues(t, 3, KernelGPUs(asks, spec(ptr.To[int32](2)), team), "KERNEL_GPUS where the team honours it")
}

func TestPolicyPerUserLimits(t *testing.T) {
	p, err := ParsePolicy([]byte("teams:\n  - name: vision\n    namespaces: [v]\n    maxKernelsPerUser: 4\n    maxGPUsPerUser: 2\n"))
	assert.NoError(t, err)
	r := p.For("v")
	assert.EqualValues(t, 4, r.MaxKernelsPerUser)
	assert.EqualValues(t, 2, r.MaxGPUsPerUser)
	assert.EqualValues(t, -1, p.For("other").MaxGPUsPerUser, "no limit elsewhere")
	_, err = ParsePolicy([]byte("teams:\n  - name: vision\n    namespaces: [v]\n    maxGPUsPerUser: -1\n"))
	assert.ErrorContains(t, err, "teams[0].maxGPUsPerUser")
}
