package controller_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/process"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// reconciled is the number of successful reconciles of a controller in a metrics page.
func reconciled(metrics, controller string) int {
	re := regexp.MustCompile(`controller_runtime_reconcile_total\{controller="` + controller + `",result="success"\} (\d+)`)
	m := re.FindStringSubmatch(metrics)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// A controller that starts (a restart, or a second replica before leader election) reconciles
// everything from scratch: it must find everything as it wants it and write nothing, so no
// running kernel is touched.
func TestRestartedControllerChangesNothing(t *testing.T) {
	ns := settledNamespace(t)
	changes := watchNamespace(t, ns)

	bin := filepath.Join(t.TempDir(), "elastic-jupyter")
	build := exec.Command("go", "build", "-o", bin, "./cmd/elastic-jupyter")
	build.Dir = testenv.RepoRoot()
	out, err := build.CombinedOutput()
	require.NoError(t, err, "building elastic-jupyter: %s", out)

	metrics := testenv.FreeAddr()
	cmd := exec.Command(bin, "controller", "--kubeconfig", env.Kubeconfig, "--leader-elect=false",
		"--metrics-bind-address", metrics, "--health-probe-bind-address", "0",
		"--image", "example.com/elastic-jupyter:test", "--notebook-image", "example.com/notebook:test",
		"--gpu-resource", "nvidia.com/mig-1g.10gb")
	cmd.Env = append(os.Environ(), "KUBECONFIG=")
	cmd.Stdout, cmd.Stderr = jupytertest.LogWriter{T: t}, jupytertest.LogWriter{T: t}
	p, err := process.StartCmd("controller", cmd)
	require.NoError(t, err)
	t.Cleanup(p.Kill)

	// Every object of every test so far is reconciled by the new controller.
	require.Eventually(t, func() bool {
		if p.Exited() {
			return true // said below
		}
		_, page, err := tryGet("http://" + metrics + "/metrics")
		return err == nil && reconciled(page, "jupyterkernel") >= 2 && reconciled(page, "jupytergateway") >= 1 &&
			reconciled(page, "jupyternotebook") >= 1 && reconciled(page, "jupyterkernelspec") >= 1
	}, 2*wait, poll, "the second controller reconciles everything")
	require.False(t, p.Exited(), "the controller exited (%v)", p.Err())
	select {
	case c := <-changes:
		t.Fatalf("a starting controller changed an object: %s", c)
	case <-time.After(idleFor):
	}
}
