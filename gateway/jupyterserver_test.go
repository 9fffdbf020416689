package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
)

// TestStockJupyterServerDrivesKernelsThroughTheGateway uses Jupyter Server 1.23 and 2.15
// (JupyterLab 4's), started with --gateway-url, exactly as a user's notebook server would:
// every call below goes to Jupyter Server, which calls the gateway.
func TestStockJupyterServerDrivesKernelsThroughTheGateway(t *testing.T) {
	for _, server := range jupytertest.Servers {
		for _, token := range []string{"", "gateway-secret-token"} {
			name := server.Name + "/without a token"
			if token != "" {
				name = server.Name + "/with a token"
			}
			t.Run(name, func(t *testing.T) { driveKernelsThroughTheGateway(t, server, token) })
		}
	}
}

func driveKernelsThroughTheGateway(t *testing.T, server jupytertest.Server, token string) {
	{
		{
			gw := startGateway(t, token)
			js := jupytertest.StartServer(t, jupytertest.ServerOptions{Server: server, GatewayURL: gw.URL, GatewayToken: token})

			var specs struct {
				Default     string                    `json:"default"`
				Kernelspecs map[string]map[string]any `json:"kernelspecs"`
			}
			require.Equal(t, 200, jupytertest.API(t, "GET", js.URL+"/api/kernelspecs", js.Token, nil, &specs))
			assert.Equal(t, "python3", specs.Default)
			assert.Contains(t, specs.Kernelspecs, "python3")
			assert.Contains(t, specs.Kernelspecs, "python3-message")

			var model map[string]any
			require.Equal(t, 201, jupytertest.API(t, "POST", js.URL+"/api/kernels", js.Token, map[string]string{"name": "python3"}, &model))
			id, _ := model["id"].(string)
			require.NotEmpty(t, id)
			assert.Equal(t, "python3", model["name"])

			// The kernel runs behind the gateway, with the notebook server's KERNEL_* env.
			var gwModel map[string]any
			require.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernels/"+id, token, nil, &gwModel))
			assert.Equal(t, id, gwModel["id"])

			ws := jupytertest.DialWS(t, js.URL+"/api/kernels/"+id+"/channels?session_id=s1", js.Token)
			ex := ws.Execute("print(6*7)", time.Minute)
			assert.Equal(t, "ok", ex.Status)
			assert.Equal(t, "42\n", ex.Stdout)
			ex = ws.Execute("import os; print(os.environ.get('KERNEL_USERNAME'))", time.Minute)
			assert.Equal(t, "alice\n", ex.Stdout, "the client's KERNEL_* env reaches the kernel")

			// Interrupt a long cell through Jupyter Server's REST API.
			req := ws.Send("shell", "execute_request", map[string]any{"code": sleepCell, "silent": false})
			waitRunning(t, ws)
			require.Equal(t, 204, jupytertest.API(t, "POST", js.URL+"/api/kernels/"+id+"/interrupt", js.Token, map[string]any{}, nil))
			ex = ws.Collect(req, 30*time.Second)
			assert.Equal(t, "KeyboardInterrupt", ex.EName)

			// Restart: the state is gone.
			ws.Execute("x = 1", time.Minute)
			require.Equal(t, 200, jupytertest.API(t, "POST", js.URL+"/api/kernels/"+id+"/restart", js.Token, map[string]any{}, nil))
			ws2 := jupytertest.DialWS(t, js.URL+"/api/kernels/"+id+"/channels?session_id=s2", js.Token)
			ex = ws2.Execute("print('x' in dir())", time.Minute)
			assert.Equal(t, "False\n", ex.Stdout)

			// Shut down: gone from the gateway too.
			require.Equal(t, 204, jupytertest.API(t, "DELETE", js.URL+"/api/kernels/"+id, js.Token, nil, nil))
			assert.Equal(t, 404, jupytertest.API(t, "GET", gw.URL+"/api/kernels/"+id, token, nil, nil))
		}
	}
}

func TestJupyterServerWithoutTheTokenIsRefused(t *testing.T) {
	for _, server := range jupytertest.Servers {
		t.Run(server.Name, func(t *testing.T) { refusedWithoutTheToken(t, server) })
	}
}

func refusedWithoutTheToken(t *testing.T, server jupytertest.Server) {
	gw := startGateway(t, "the-right-token")
	js := jupytertest.StartServer(t, jupytertest.ServerOptions{Server: server, GatewayURL: gw.URL})
	var out map[string]any
	code := jupytertest.API(t, "POST", js.URL+"/api/kernels", js.Token, map[string]string{"name": "python3"}, &out)
	assert.NotEqual(t, 201, code, "no kernel without the gateway's token")
	var list []any
	require.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernels", "the-right-token", nil, &list))
	assert.Empty(t, list)

	wrong := jupytertest.StartServer(t, jupytertest.ServerOptions{Server: server, GatewayURL: gw.URL, GatewayToken: "a-wrong-token"})
	code = jupytertest.API(t, "POST", wrong.URL+"/api/kernels", wrong.Token, map[string]string{"name": "python3"}, &out)
	assert.NotEqual(t, 201, code)
	assert.Equal(t, http.StatusForbidden, jupytertest.API(t, "GET", gw.URL+"/api/kernels", "a-wrong-token", nil, nil))
}

// sleepCell prints, then sleeps for a minute: once its output arrives, user code runs and an
// interrupt lands in it (a SIGINT that arrives while ipykernel itself is busy may be lost).
const sleepCell = "import time\nprint('sleeping', flush=True)\ntime.sleep(60)"

// waitRunning waits until the sleep cell's output arrives.
func waitRunning(t *testing.T, ws *jupytertest.WSClient) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		select {
		case m := <-ws.Msgs:
			if m.Header.MsgType == "stream" && strings.Contains(string(m.Content), "sleeping") {
				return
			}
		case <-deadline:
			t.Fatal("the cell never started")
		}
	}
}
