package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/devcluster"
)

// counterSum sums the samples of a Prometheus counter at url whose labels include every one of
// labels (name="value" pairs).
func counterSum(t *testing.T, url, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndex(line, " ")+1:], 64)
		require.NoError(t, err, line)
		sum += v
	}
	require.NoError(t, sc.Err())
	return sum
}

// TestGPUTimeHeldAndGivenBackAreCounted: a GPU kernel runs, is suspended and given back, then
// shut down; the controller's metrics count the GPU-seconds it held and gave back as its own
// timestamps say, to within one cull interval, and the gateway's status counts what it gave back.
func TestGPUTimeHeldAndGivenBackAreCounted(t *testing.T) {
	g := newGatewayClient(t)
	var started []string
	cleanUpKernels(t, g, &started)
	saved := gatewaySpec(t)
	t.Cleanup(func() { restoreGatewaySpec(t, saved) })
	waitNoGPUHeld(t)
	metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", cluster.Config().ControllerMetricsPort)
	team := `namespace="` + devcluster.TeamNamespace + `"`
	gpu := `resource="nvidia.com/gpu"`
	held0 := counterSum(t, metrics, "elastic_jupyter_gpu_seconds_held_total", team, gpu)
	given0 := counterSum(t, metrics, "elastic_jupyter_gpu_seconds_given_back_total", team, gpu)
	status0 := gatewayGivenBack(t)

	id := g.start("python3-gpu")
	started = append(started, id)
	ex := g.executeFirst(id, "print('on a GPU')", 3*time.Minute)
	require.Equal(t, "ok", ex.Status, ex.EValue)
	k := kernelJSON(t, id)
	require.NotNil(t, k.Status.StartTime)
	heldFrom := k.Status.StartTime.Time // the pod holds its GPU from its start

	patchGatewayJSON(t, `{"spec":{"cullIdleTimeout":3,"cullInterval":1}}`)
	require.Eventually(t, func() bool {
		k = kernelJSON(t, id)
		return k.Status.Phase == ejv1.KernelSuspended && k.Status.GPUs == 0 && k.Status.SuspendedAt != nil
	}, 2*time.Minute, 250*time.Millisecond, "the kernel is suspended and its GPU given back")
	assert.EqualValues(t, 1, k.Status.SuspendedGPUs)
	suspendedAt := k.Status.SuspendedAt.Time
	restoreGatewaySpec(t, saved) // no more culling: the kernel stays suspended until shut down
	require.Eventually(t, func() bool { return time.Since(suspendedAt) > 8*time.Second }, time.Minute, 250*time.Millisecond)
	require.Equal(t, http.StatusNoContent, g.api("DELETE", "/api/kernels/"+id, nil, nil))
	deletedAt := time.Now()
	nothingLeftOf(t, id)
	require.Eventually(t, func() bool { return time.Since(deletedAt) > 3*time.Second }, time.Minute, 250*time.Millisecond, "the accounting's next passes")

	held := counterSum(t, metrics, "elastic_jupyter_gpu_seconds_held_total", team, gpu) - held0
	given := counterSum(t, metrics, "elastic_jupyter_gpu_seconds_given_back_total", team, gpu) - given0
	wantHeld, wantGiven := suspendedAt.Sub(heldFrom).Seconds(), deletedAt.Sub(suspendedAt).Seconds()
	tolerance := 10.0 + 2 // the quick start's cull interval, and the accounting's second at each end
	t.Logf("GPU-seconds held %.1f (the kernel's timestamps say %.1f), given back %.1f (%.1f)", held, wantHeld, given, wantGiven)
	assert.LessOrEqual(t, math.Abs(held-wantHeld), tolerance, "held: %.1f, want %.1f", held, wantHeld)
	assert.LessOrEqual(t, math.Abs(given-wantGiven), tolerance, "given back: %.1f, want %.1f", given, wantGiven)
	fmt.Printf("e2e: metrics: a GPU kernel held %.1f GPU-s (timestamps: %.1f) and gave back %.1f GPU-s (timestamps: %.1f)\n", held, wantHeld, given, wantGiven)

	require.Eventually(t, func() bool { return gatewayGivenBack(t)-status0 >= int64(wantGiven-tolerance) }, 2*time.Minute, time.Second,
		"the gateway's status counts the GPU time given back")
}

// kernelJSON is kernel id's JupyterKernel.
func kernelJSON(t *testing.T, id string) *ejv1.JupyterKernel {
	t.Helper()
	k := &ejv1.JupyterKernel{}
	out := kubectl(t, "-n", devcluster.TeamNamespace, "get", "jupyterkernel", id, "-o", "json")
	require.NoError(t, jsonUnmarshal(out, k))
	return k
}

func gatewayGivenBack(t *testing.T) int64 {
	t.Helper()
	out := strings.TrimSpace(kubectl(t, "-n", devcluster.TeamNamespace, "get", "jupytergateway", devcluster.GatewayName, "-o", "jsonpath={.status.gpuSecondsGivenBack}"))
	if out == "" {
		return 0
	}
	n, err := strconv.ParseInt(out, 10, 64)
	require.NoError(t, err)
	return n
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
