package controller_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	coordinationv1 "k8s.io/api/coordination/v1"

	"github.com/elastic-jupyter/elastic-jupyter/controller"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestManagerServesProbesAndMetricsAndHoldsTheLease(t *testing.T) {
	for _, p := range []string{"/healthz", "/readyz"} {
		code, _ := get(t, probeURL+p)
		assert.Equal(t, http.StatusOK, code, p)
	}
	lease := exists(t, leaseNamespace, controller.LeaderElectionID, &coordinationv1.Lease{})
	require.NotNil(t, lease.Spec.HolderIdentity)
	assert.NotEmpty(t, *lease.Spec.HolderIdentity, "the manager leads")

	require.Eventually(t, func() bool {
		code, body := get(t, metricsURL+"/metrics")
		return code == http.StatusOK && containsAll(body,
			`controller_runtime_reconcile_total{controller="jupyterkernel"`,
			`controller_runtime_reconcile_total{controller="jupytergateway"`,
			`controller_runtime_reconcile_total{controller="jupyternotebook"`)
	}, wait, poll, "controller-runtime's metrics are served")
}

// tryGet is get without failing the test.
func tryGet(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
