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
