package gateway_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

func TestV1SubprotocolWhenTheClientOffersIt(t *testing.T) {
	gw := startGateway(t, "")
	id := startKernel(t, gw)
	d := websocket.Dialer{Subprotocols: []string{jupyter.SubprotocolV1}}
	ws, resp, err := d.Dial(strings.Replace(gw.URL, "http", "ws", 1)+"/api/kernels/"+id+"/channels", http.Header{})
	require.NoError(t, err)
	defer resp.Body.Close()
	defer ws.Close()
	assert.Equal(t, jupyter.SubprotocolV1, ws.Subprotocol())

	send := func(code string) *jupyter.Message {
		m, err := jupyter.NewMessage("execute_request", "v1-session", "tester", map[string]any{"code": code, "silent": false}, nil)
		require.NoError(t, err)
		m.Channel = "shell"
		data, err := jupyter.EncodeWSV1(m)
		require.NoError(t, err)
		require.NoError(t, ws.WriteMessage(websocket.BinaryMessage, data))
		return m
	}
	var stdout strings.Builder
	deadline := time.Now().Add(time.Minute)
	req := send("print(6*7)")
	// iopub and shell travel apart: the answer is complete with the reply and the idle status.
	replied, idle := false, false
	for {
		require.NoError(t, ws.SetReadDeadline(deadline))
		typ, data, err := ws.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, websocket.BinaryMessage, typ, "v1 frames are binary")
		m, err := jupyter.DecodeWSV1(data, jupyter.DefaultLimits)
		require.NoError(t, err)
		if m.Parent().MsgID != req.Header.MsgID {
			continue
		}
		if m.Header.MsgType == "stream" {
			var s struct{ Name, Text string }
			require.NoError(t, json.Unmarshal(m.Content, &s))
			if s.Name == "stdout" {
				stdout.WriteString(s.Text)
			}
		}
		if m.Header.MsgType == "execute_reply" {
			replied = true
		}
		if st, ok := m.ExecutionState(); ok && st == "idle" {
			idle = true
		}
		if replied && idle {
			break
		}
	}
	assert.Equal(t, "42\n", stdout.String())
}

func TestInterruptModeMessageUsesTheControlChannel(t *testing.T) {
	gw := startGateway(t, "")
	var m map[string]any
	require.Equal(t, 201, jupytertest.API(t, "POST", gw.URL+"/api/kernels", "", map[string]any{"name": "python3-message"}, &m))
	id := m["id"].(string)
	ws := jupytertest.DialWS(t, gw.URL+"/api/kernels/"+id+"/channels", "")
	req := ws.Send("shell", "execute_request", map[string]any{"code": sleepCell, "silent": false})
	waitRunning(t, ws)
	require.Equal(t, 204, jupytertest.API(t, "POST", gw.URL+"/api/kernels/"+id+"/interrupt", "", map[string]any{}, nil))
	ex := ws.Collect(req, 30*time.Second)
	assert.Equal(t, "KeyboardInterrupt", ex.EName)
}

// TestCellsSentWhileTheKernelStartsAreNeverLost: the start answers at once with the kernel
// starting; a cell sent at once on a new websocket is held and runs once the kernel is up,
// with the gateway's line saying what it waited for. A client that reconnects with its session
// while the kernel starts (Jupyter Server and JupyterLab do, as the page loads) gets the
// answers to what it sent on the websocket it dropped, and a stale websocket of the same
// session is replaced rather than left to steal the replies.
func TestCellsSentWhileTheKernelStartsAreNeverLost(t *testing.T) {
	gw := startGateway(t, "")
	start := func() string {
		var m map[string]any
		require.Equal(t, 201, jupytertest.API(t, "POST", gw.URL+"/api/kernels", "", map[string]any{"name": "python3-slow"}, &m))
		assert.Equal(t, "starting", m["execution_state"], "the start answers at once")
		return m["id"].(string)
	}
	url := func(id, session string) string {
		return gw.URL + "/api/kernels/" + id + "/channels?session_id=" + session
	}

	t.Run("a cell sent at once", func(t *testing.T) {
		id := start()
		ws := jupytertest.DialWSRaw(t, url(id, "s1"), "")
		ex := ws.Execute("print('held')", time.Minute)
		assert.Equal(t, "ok", ex.Status)
		assert.Equal(t, "held\n", ex.Stdout)
		assert.Contains(t, ex.Stderr, "starting the kernel", "the cell showed what it waited for")
		assert.Contains(t, ex.Statuses, "starting")
	})

	t.Run("a stale websocket of the same session is replaced", func(t *testing.T) {
		id := start()
		stale := jupytertest.DialWSRaw(t, url(id, "s2"), "")
		fresh := jupytertest.DialWSRaw(t, url(id, "s2"), "")
		req := fresh.Send("shell", "execute_request", map[string]any{"code": "print('fresh')", "silent": false})
		ex := fresh.Collect(req, time.Minute)
		assert.Equal(t, "fresh\n", ex.Stdout)
		closed := make(chan struct{})
		go func() {
			for range stale.Msgs {
			}
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(30 * time.Second):
			t.Fatal("the stale websocket of the session stays open")
		}
	})

	t.Run("a client reconnecting with its session gets what it sent", func(t *testing.T) {
		id := start()
		first := jupytertest.DialWSRaw(t, url(id, "s3"), "")
		req := first.Send("shell", "execute_request", map[string]any{"code": "print('sent before the drop')", "silent": false})
		first.WaitStderr(req, "starting the kernel", time.Minute)
		require.NoError(t, first.WS.Close())
		again := jupytertest.DialWSRaw(t, url(id, "s3"), "")
		ex := again.Collect(req, time.Minute)
		assert.Equal(t, "ok", ex.Status)
		assert.Equal(t, "sent before the drop\n", ex.Stdout)

		// Another session never gets them.
		other := jupytertest.DialWSRaw(t, url(id, "s4"), "")
		ex = other.Execute("print('other')", time.Minute)
		assert.Equal(t, "other\n", ex.Stdout)
	})
}
