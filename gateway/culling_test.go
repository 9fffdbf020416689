package gateway_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
)

// startKernel starts a python3 kernel directly on the gateway and returns its id.
func startKernel(t *testing.T, gw *testGateway) string {
	t.Helper()
	var model map[string]any
	require.Equal(t, 201, jupytertest.API(t, "POST", gw.URL+"/api/kernels", gw.Token, map[string]any{"name": "python3"}, &model))
	return model["id"].(string)
}

func model(t *testing.T, gw *testGateway, id string) (map[string]any, int) {
	t.Helper()
	var m map[string]any
	code := jupytertest.API(t, "GET", gw.URL+"/api/kernels/"+id, gw.Token, nil, &m)
	return m, code
}

// kernelPID asks the kernel for its pid through a websocket.
func kernelPID(t *testing.T, ws *jupytertest.WSClient) int {
	t.Helper()
	ex := ws.Execute("import os; print(os.getpid())", time.Minute)
	pid, err := strconv.Atoi(strings.TrimSpace(ex.Stdout))
	require.NoError(t, err, ex.Stdout)
	return pid
}

func processGone(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || strings.Contains(string(data), ") Z ")
}

// idleLongerThan waits until the kernel's last_activity is older than d.
func idleLongerThan(t *testing.T, gw *testGateway, id string, d time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool {
		m, code := model(t, gw, id)
		require.Equal(t, 200, code)
		last, err := time.Parse("2006-01-02T15:04:05.000000Z", m["last_activity"].(string))
		require.NoError(t, err)
		return time.Since(last) > d
	}, time.Minute, 50*time.Millisecond)
}

func TestCullDeleteRemovesAnIdleKernel(t *testing.T) {
	gw := startGateway(t, "")
	gw.Settings.set(func(s *gateway.Settings) {
		s.CullIdleTimeout = 500 * time.Millisecond
		s.CullPolicy = gateway.CullDelete
	})
	id := startKernel(t, gw)
	ws := jupytertest.DialWS(t, gw.URL+"/api/kernels/"+id+"/channels", "")
	pid := kernelPID(t, ws)
	require.NoError(t, ws.WS.Close())
	require.Eventually(t, func() bool {
		gw.G.CullOnce(context.Background())
		_, code := model(t, gw, id)
		return code == 404
	}, time.Minute, 100*time.Millisecond, "the idle kernel is culled")
	assert.Eventually(t, func() bool { return processGone(pid) }, 30*time.Second, 50*time.Millisecond, "its process is gone")
}

func TestCullSparesBusyKernelsUnlessCullBusy(t *testing.T) {
	gw := startGateway(t, "")
	gw.Settings.set(func(s *gateway.Settings) { s.CullIdleTimeout = 500 * time.Millisecond })
	id := startKernel(t, gw)
	ws := jupytertest.DialWS(t, gw.URL+"/api/kernels/"+id+"/channels", "")
	ws.Send("shell", "execute_request", map[string]any{"code": sleepCell, "silent": false})
	waitRunning(t, ws)
	require.NoError(t, ws.WS.Close()) // nobody connected, the cell still runs
	require.Eventually(t, func() bool {
		m, _ := model(t, gw, id)
		return m["connections"].(float64) == 0
	}, 30*time.Second, 50*time.Millisecond)
	idleLongerThan(t, gw, id, time.Second)

	gw.G.CullOnce(context.Background())
	m, code := model(t, gw, id)
	require.Equal(t, 200, code, "a busy kernel is not culled")
	assert.Equal(t, "busy", m["execution_state"])

	gw.Settings.set(func(s *gateway.Settings) { s.CullBusy = true })
	gw.G.CullOnce(context.Background())
	_, code = model(t, gw, id)
	assert.Equal(t, 404, code, "with cullBusy it is")
}

func TestCullSparesConnectedKernelsUnlessCullConnected(t *testing.T) {
	gw := startGateway(t, "")
	gw.Settings.set(func(s *gateway.Settings) { s.CullIdleTimeout = 500 * time.Millisecond })
	id := startKernel(t, gw)
	ws := jupytertest.DialWS(t, gw.URL+"/api/kernels/"+id+"/channels", "")
	idleLongerThan(t, gw, id, time.Second)

	gw.G.CullOnce(context.Background())
	m, code := model(t, gw, id)
	require.Equal(t, 200, code, "a connected kernel is not culled")
	assert.EqualValues(t, 1, m["connections"])

	gw.Settings.set(func(s *gateway.Settings) { s.CullConnected = true })
	gw.G.CullOnce(context.Background())
	_, code = model(t, gw, id)
	assert.Equal(t, 404, code, "with cullConnected it is")
	select {
	case _, open := <-ws.Msgs:
		for open {
			_, open = <-ws.Msgs
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the websocket of a deleted kernel stays open")
	}
}

func TestCullSuspendFreesTheKernelAndTheNextExecuteResumesIt(t *testing.T) {
	gw := startGateway(t, "")
	gw.Settings.set(func(s *gateway.Settings) {
		s.CullIdleTimeout = 500 * time.Millisecond
		s.CullPolicy = gateway.CullSuspend
		s.CullConnected = true
	})
	id := startKernel(t, gw)
	ws := jupytertest.DialWS(t, gw.URL+"/api/kernels/"+id+"/channels", "")
	pid := kernelPID(t, ws)
	idleLongerThan(t, gw, id, time.Second)

	gw.G.CullOnce(context.Background())
	m, code := model(t, gw, id)
	require.Equal(t, 200, code, "a suspended kernel keeps its id")
	assert.Equal(t, true, m["suspended"])
	assert.Equal(t, "idle", m["execution_state"], "an execution state Jupyter Server accepts")
	assert.Eventually(t, func() bool { return processGone(pid) }, 30*time.Second, 50*time.Millisecond, "its process is gone")

	// The same websocket, still open: the next execute resumes the kernel and is answered.
	ex := ws.Execute("print('back')", 2*time.Minute)
	assert.Equal(t, "ok", ex.Status)
	assert.Equal(t, "back\n", ex.Stdout)
	assert.Contains(t, ex.Statuses, "starting", "the client saw the kernel starting")
	m, _ = model(t, gw, id)
	assert.Equal(t, false, m["suspended"])
	assert.NotEqual(t, pid, kernelPID(t, ws), "a fresh kernel process")
}

func TestDeadKernelIsCulledAtOnce(t *testing.T) {
	gw := startGateway(t, "")
	id := startKernel(t, gw) // culling by idleness is off (timeout 0)
	ws := jupytertest.DialWS(t, gw.URL+"/api/kernels/"+id+"/channels", "")
	pid := kernelPID(t, ws)
	p, err := os.FindProcess(pid)
	require.NoError(t, err)
	require.NoError(t, p.Kill())
	require.Eventually(t, func() bool {
		gw.G.CullOnce(context.Background())
		_, code := model(t, gw, id)
		return code == 404
	}, 30*time.Second, 100*time.Millisecond)
}
