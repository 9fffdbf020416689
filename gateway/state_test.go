package gateway_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

// suspendNow culls the kernel with Suspend (idle past a short timeout, its tab left open) and
// waits until its process is gone.
func suspendNow(t *testing.T, gw *testGateway, id string, pid int) {
	t.Helper()
	idleLongerThan(t, gw, id, time.Second)
	gw.G.CullOnce(context.Background())
	m, code := model(t, gw, id)
	require.Equal(t, 200, code)
	require.Equal(t, true, m["suspended"], "the kernel was suspended")
	require.Eventually(t, func() bool { return processGone(pid) }, 30*time.Second, 50*time.Millisecond, "its process is gone")
}

func suspendingGateway(t *testing.T, maxBytes int64) (*testGateway, string) {
	stateDir := t.TempDir()
	gw := startGatewayWith(t, "", func(p *gateway.LocalProvisioner) { p.StateDir, p.StateMaxBytes = stateDir, maxBytes }, nil)
	gw.Settings.set(func(s *gateway.Settings) {
		s.CullIdleTimeout = 500 * time.Millisecond
		s.CullPolicy = gateway.CullSuspend
		s.CullConnected = true
	})
	return gw, stateDir
}

// TestSuspendKeepsTheUsersVariables: the tab stays open on an idle kernel; it is suspended
// (its process is gone, the cell that ran last says so); the next cell runs in a new process
// with the variables back, and says which came back and which were not kept.
func TestSuspendKeepsTheUsersVariables(t *testing.T) {
	gw, stateDir := suspendingGateway(t, 0)
	id := startKernel(t, gw)
	ws := jupytertest.DialWS(t, gw.URL+"/api/kernels/"+id+"/channels", "")
	ex := ws.Execute("import numpy as np\nx = 41\nbig = np.arange(6_000_000, dtype=np.float64)\nf = open('/dev/null')\ndef twice(v):\n    return 2 * v", time.Minute)
	require.Equal(t, "ok", ex.Status, ex.EValue)
	last := ws.Send("shell", "execute_request", map[string]any{"code": "print(int(big.sum()))", "silent": false})
	ex = ws.Collect(last, time.Minute)
	sum := strings.TrimSpace(ex.Stdout)
	pid := kernelPID(t, ws)

	suspendNow(t, gw, id, pid)
	files, _ := filepath.Glob(filepath.Join(stateDir, "*"+launcher.StateFileSuffix))
	assert.Len(t, files, 1, "one snapshot, for the suspended kernel")

	ex = ws.Execute("print(x + 1, int(big.sum()), twice(3), np.pi > 3)", 2*time.Minute)
	require.Equal(t, "ok", ex.Status, ex.EValue)
	assert.Equal(t, "42 "+sum+" 6 True\n", ex.Stdout, "the variables, the array and the module came back")
	assert.Contains(t, ex.Stderr, "resumed: restored")
	assert.Contains(t, ex.Stderr, "not kept: f (an open file)")
	assert.NotEqual(t, pid, kernelPID(t, ws), "it runs in a new process")
	files, _ = filepath.Glob(filepath.Join(stateDir, "*"+launcher.StateFileSuffix))
	assert.Empty(t, files, "the snapshot is gone once loaded")
}

// TestSuspendNotesInTheLastCell: the cell that ran last tells the user their GPU was given
// back, and what the next cell brings back.
func TestSuspendNotesInTheLastCell(t *testing.T) {
	gw, _ := suspendingGateway(t, 0)
	id := startKernel(t, gw)
	ws := jupytertest.DialWS(t, gw.URL+"/api/kernels/"+id+"/channels", "")
	req := ws.Send("shell", "execute_request", map[string]any{"code": "x = 41; f = open('/dev/null'); print('ran')", "silent": false})
	ex := ws.Collect(req, time.Minute)
	require.Equal(t, "ran\n", ex.Stdout)
	pid := kernelPID(t, ws)
	last := ws.Send("shell", "execute_request", map[string]any{"code": "y = 1", "silent": false})
	ws.Collect(last, time.Minute)
	suspendNow(t, gw, id, pid)
	line := ws.WaitStderr(last, "given back", time.Minute)
	assert.Contains(t, line, "your next cell brings the kernel back with 2 of its variables (not kept: f (an open file))")
	assert.Regexp(t, `^idle \d+ s: its resources were given back; `, line, "a local kernel holds no GPU")
}

// TestSuspendOverMaxBytesStillFreesTheKernel: a snapshot over maxBytes keeps what fits and
// never keeps the kernel from being suspended; the user is told what was not kept.
func TestSuspendOverMaxBytesStillFreesTheKernel(t *testing.T) {
	gw, _ := suspendingGateway(t, 8<<20)
	id := startKernel(t, gw)
	ws := jupytertest.DialWS(t, gw.URL+"/api/kernels/"+id+"/channels", "")
	ex := ws.Execute("import numpy as np\nsmall = 7\nhuge = np.zeros(4_000_000)", time.Minute)
	require.Equal(t, "ok", ex.Status, ex.EValue)
	pid := kernelPID(t, ws)
	suspendNow(t, gw, id, pid)
	ex = ws.Execute("print(small, 'huge' in dir())", 2*time.Minute)
	assert.Equal(t, "7 False\n", ex.Stdout)
	assert.Contains(t, ex.Stderr, "not kept: huge (")
	assert.Contains(t, ex.Stderr, "state limit")
}

// TestRestartingASuspendedKernelStartsFresh: a restart asks for a fresh interpreter, so the
// saved variables are dropped, not loaded.
func TestRestartingASuspendedKernelStartsFresh(t *testing.T) {
	gw, stateDir := suspendingGateway(t, 0)
	id := startKernel(t, gw)
	ws := jupytertest.DialWS(t, gw.URL+"/api/kernels/"+id+"/channels", "")
	ws.Execute("x = 41", time.Minute)
	pid := kernelPID(t, ws)
	suspendNow(t, gw, id, pid)
	require.Equal(t, 200, jupytertest.API(t, "POST", gw.URL+"/api/kernels/"+id+"/restart", "", map[string]any{}, nil))
	ex := ws.Execute("print('x' in dir())", time.Minute)
	assert.Equal(t, "False\n", ex.Stdout)
	entries, err := os.ReadDir(stateDir)
	require.NoError(t, err)
	assert.Empty(t, entries, "the dropped snapshot is deleted")
}

// TestSuspendWithoutStateSaysSo: a kernel whose kernelspec keeps no state comes back fresh,
// and the notebook is told.
func TestSuspendWithoutStateSaysSo(t *testing.T) {
	gw := startGateway(t, "")
	gw.Settings.set(func(s *gateway.Settings) {
		s.CullIdleTimeout, s.CullPolicy, s.CullConnected = 500*time.Millisecond, gateway.CullSuspend, true
	})
	id := startKernel(t, gw)
	ws := jupytertest.DialWS(t, gw.URL+"/api/kernels/"+id+"/channels", "")
	ws.Execute("x = 41", time.Minute)
	pid := kernelPID(t, ws)
	suspendNow(t, gw, id, pid)
	ex := ws.Execute("print('x' in dir())", time.Minute)
	assert.Equal(t, "False\n", ex.Stdout)
	assert.Contains(t, ex.Stderr, "a fresh interpreter (this kernel's kernelspec keeps no variables across a suspension)")
}
