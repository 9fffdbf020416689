package gateway_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
)

// noLeaks fails t when goroutines other than those of before are still running. Idle HTTP
// client connections are closed first: they are the test's, not the gateway's.
func noLeaks(t *testing.T, before goleak.Option) {
	t.Helper()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	goleak.VerifyNone(t, before)
}

// closedByGateway waits until the gateway closes the client's websocket.
func closedByGateway(t *testing.T, ws *jupytertest.WSClient) {
	t.Helper()
	timeout := time.After(time.Minute)
	for {
		select {
		case _, ok := <-ws.Msgs:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("the gateway did not close the websocket of a deleted kernel")
		}
	}
}

// TestBridgeGoroutinesEndWithIt: every goroutine a websocket bridge starts (its reader,
// deliverer, pinger, kernel relay and dial) ends when the client leaves, when its kernel is
// deleted, when the client leaves while the kernel still starts, and when the gateway shuts
// down with websockets open.
func TestBridgeGoroutinesEndWithIt(t *testing.T) {
	atStart := goleak.IgnoreCurrent()
	// Cleanups run last-registered first: this one runs after the gateway's has shut it down.
	t.Cleanup(func() { noLeaks(t, atStart) })

	gw := startGateway(t, "")
	url := func(id string) string { return gw.URL + "/api/kernels/" + id + "/channels" }
	id := startKernel(t, gw)
	warm := jupytertest.DialWS(t, url(id), "")
	warm.Execute("x = 1", time.Minute)
	require.NoError(t, warm.WS.Close())
	running := goleak.IgnoreCurrent()

	t.Run("the client leaves", func(t *testing.T) {
		ws := jupytertest.DialWS(t, url(id), "")
		ex := ws.Execute("print(x)", time.Minute)
		require.Equal(t, "1\n", ex.Stdout)
		require.NoError(t, ws.WS.Close())
		noLeaks(t, running)
	})

	t.Run("the client leaves while the kernel starts", func(t *testing.T) {
		before := goleak.IgnoreCurrent()
		var m map[string]any
		require.Equal(t, 201, jupytertest.API(t, "POST", gw.URL+"/api/kernels", "", map[string]any{"name": "python3-slow"}, &m))
		slow := m["id"].(string)
		ws := jupytertest.DialWSRaw(t, url(slow), "")
		req := ws.Send("shell", "execute_request", map[string]any{"code": "print('held')", "silent": false})
		ws.WaitStderr(req, "starting the kernel", time.Minute)
		require.NoError(t, ws.WS.Close())
		require.Eventually(t, func() bool {
			var k map[string]any
			jupytertest.API(t, "GET", gw.URL+"/api/kernels/"+slow, "", nil, &k)
			return k["execution_state"] == "idle"
		}, time.Minute, 20*time.Millisecond, "the kernel came up with nobody connected")
		require.Equal(t, 204, jupytertest.API(t, "DELETE", gw.URL+"/api/kernels/"+slow, "", nil, nil))
		noLeaks(t, before)
	})

	t.Run("the kernel is deleted", func(t *testing.T) {
		before := goleak.IgnoreCurrent()
		doomed := startKernel(t, gw)
		ws := jupytertest.DialWS(t, url(doomed), "")
		ws.Execute("y = 2", time.Minute)
		require.Equal(t, 204, jupytertest.API(t, "DELETE", gw.URL+"/api/kernels/"+doomed, "", nil, nil))
		closedByGateway(t, ws)
		noLeaks(t, before)
	})

	// Left open: the gateway's shutdown must end them (checked by the cleanup above).
	for range 2 {
		ws := jupytertest.DialWS(t, url(id), "")
		ws.Execute("x += 1", time.Minute)
	}
}
