package webhook_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// TestPerUserLimitsRefuseWithTheLimitAndCreateNothing: team-quota allows 3 kernels and 1 GPU
// per user. A start or a resume over either is refused with a message naming the limit and
// what the user holds, and nothing is created; a suspended kernel holds no GPU; another user
// is not affected.
func TestPerUserLimitsRefuseWithTheLimitAndCreateNothing(t *testing.T) {
	createKernelSpec(t, "team-quota", "gpu", ptr.To[int32](1), "")
	createKernelSpec(t, "team-quota", "cpu", ptr.To[int32](0), "")
	kernel := func(name, user, spec string) *ejv1.JupyterKernel {
		k := &ejv1.JupyterKernel{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-quota"}}
		k.Spec.KernelSpec, k.Spec.User = &ejv1.ObjectRef{Name: spec}, user
		return k
	}
	create := func(k *ejv1.JupyterKernel) error {
		err := env.Client.Create(ctx(t), k)
		if err == nil {
			t.Cleanup(func() { _ = env.Client.Delete(context.Background(), k) })
		}
		return err
	}
	refused := func(err error, want ...string) {
		t.Helper()
		require.Error(t, err)
		assert.True(t, apierrors.IsInvalid(err) || apierrors.IsForbidden(err), "%v", err)
		for _, w := range want {
			assert.Contains(t, err.Error(), w)
		}
	}
	setSuspend := func(k *ejv1.JupyterKernel, v bool) error {
		return retry.RetryOnConflict(retry.DefaultRetry, func() error {
			if err := env.Client.Get(ctx(t), client.ObjectKeyFromObject(k), k); err != nil {
				return err
			}
			k.Spec.Suspend = v
			return env.Client.Update(ctx(t), k)
		})
	}

	k1 := kernel("00000000-0000-4000-8000-0000000000q1", "alice", "gpu")
	require.NoError(t, create(k1))
	over := kernel("00000000-0000-4000-8000-0000000000q2", "alice", "gpu")
	refused(create(over), "team team-quota allows at most 1 nvidia.com/gpu per user (maxGPUsPerUser) and alice holds 1 (kernels "+k1.Name+")")
	assert.True(t, apierrors.IsNotFound(env.Client.Get(ctx(t), client.ObjectKeyFromObject(over), &ejv1.JupyterKernel{})), "nothing was created")
	require.NoError(t, create(kernel("00000000-0000-4000-8000-0000000000b1", "bob", "gpu")), "bob holds none")

	require.NoError(t, create(kernel("00000000-0000-4000-8000-0000000000q3", "alice", "cpu")), "a CPU kernel")
	require.NoError(t, setSuspend(k1, true), "suspended, k1 holds no GPU")
	k4 := kernel("00000000-0000-4000-8000-0000000000q4", "alice", "gpu")
	require.NoError(t, create(k4), "the GPU k1 gave back")
	refused(setSuspend(k1, false), "maxGPUsPerUser", "kernels "+k4.Name)
	refused(create(kernel("00000000-0000-4000-8000-0000000000q5", "alice", "cpu")),
		"team team-quota allows at most 3 kernels per user (maxKernelsPerUser) and alice has 3: shut one down first")
}
