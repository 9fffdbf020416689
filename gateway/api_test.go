package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
)

func TestKernelModelShape(t *testing.T) {
	gw := startGateway(t, "")
	var m map[string]any
	require.Equal(t, 201, jupytertest.API(t, "POST", gw.URL+"/api/kernels", "", map[string]any{"name": "python3", "env": map[string]string{"KERNEL_USERNAME": "bob"}}, &m))
	// Jupyter Server's own routes accept only ids of this shape.
	assert.Regexp(t, `^\w+-\w+-\w+-\w+-\w+$`, m["id"])
	// Parsed strictly as %Y-%m-%dT%H:%M:%S.%fZ by the gateway client.
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`, m["last_activity"])
	// The start answers at once; the kernel is idle once it runs.
	assert.Equal(t, "starting", m["execution_state"])
	require.Eventually(t, func() bool {
		var now map[string]any
		require.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernels/"+m["id"].(string), "", nil, &now))
		return now["execution_state"] == "idle"
	}, time.Minute, 20*time.Millisecond)
	assert.EqualValues(t, 0, m["connections"])
	assert.Equal(t, "python3", m["name"])

	var list []map[string]any
	require.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernels", "", nil, &list))
	require.Len(t, list, 1)
	assert.Equal(t, m["id"], list[0]["id"])
}

func TestKernelspecsShapeAndResources(t *testing.T) {
	gw := startGateway(t, "")
	var specs struct {
		Default     string `json:"default"`
		Kernelspecs map[string]struct {
			Name      string            `json:"name"`
			Spec      map[string]any    `json:"spec"`
			Resources map[string]string `json:"resources"`
		} `json:"kernelspecs"`
	}
	require.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernelspecs?user=alice", "", nil, &specs))
	assert.Equal(t, "python3", specs.Default)
	py := specs.Kernelspecs["python3"]
	assert.Equal(t, "python3", py.Name)
	assert.Equal(t, "Python 3 (python3)", py.Spec["display_name"])
	assert.Equal(t, "python", py.Spec["language"])
	assert.Equal(t, "signal", py.Spec["interrupt_mode"])
	assert.Equal(t, map[string]any{"debugger": true}, py.Spec["metadata"])
	assert.Equal(t, "/kernelspecs/python3/logo-64x64.png", py.Resources["logo-64x64"])

	resp, err := http.Get(gw.URL + "/kernelspecs/python3/logo-64x64.png")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "\x89PNG fake", string(body))

	for _, path := range []string{"/kernelspecs/python3/logo-32x32.png", "/kernelspecs/python3/../../etc/passwd", "/kernelspecs/nope/logo-64x64.png"} {
		resp, err := http.Get(gw.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 404, resp.StatusCode, path)
	}
	var one map[string]any
	require.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernelspecs/python3-message", "", nil, &one))
	assert.Equal(t, "message", one["spec"].(map[string]any)["interrupt_mode"])
}

func TestBadRequestsAreExplained(t *testing.T) {
	gw := startGateway(t, "")
	cases := []struct {
		name string
		body any
		code int
		want string
	}{
		{"a variable that is not KERNEL_*", map[string]any{"name": "python3", "env": map[string]string{"LD_PRELOAD": "/evil.so"}}, 400, `"LD_PRELOAD"`},
		{"a value with $", map[string]any{"name": "python3", "env": map[string]string{"KERNEL_X": "$(rm -rf /)"}}, 400, `"KERNEL_X"`},
		{"a value with a backtick", map[string]any{"name": "python3", "env": map[string]string{"KERNEL_Y": "`id`"}}, 400, `"KERNEL_Y"`},
		{"a control character", map[string]any{"name": "python3", "env": map[string]string{"KERNEL_Z": "a\nb"}}, 400, `"KERNEL_Z"`},
		{"a value too long", map[string]any{"name": "python3", "env": map[string]string{"KERNEL_LONG": strings.Repeat("x", 4097)}}, 400, "at most 4096"},
		{"a bad launch timeout", map[string]any{"name": "python3", "env": map[string]string{"KERNEL_LAUNCH_TIMEOUT": "soon"}}, 400, "KERNEL_LAUNCH_TIMEOUT"},
		{"an unknown kernelspec", map[string]any{"name": "cobol"}, 404, `"cobol"`},
		{"a body that is not JSON", "not json", 400, "must be JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var e map[string]string
			code := jupytertest.API(t, "POST", gw.URL+"/api/kernels", "", tc.body, &e)
			assert.Equal(t, tc.code, code)
			assert.Contains(t, e["message"], tc.want)
			assert.NotEmpty(t, e["reason"])
		})
	}
	var list []any
	require.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernels", "", nil, &list))
	assert.Empty(t, list, "no kernel was half-created by a bad request")

	var e map[string]string
	assert.Equal(t, 404, jupytertest.API(t, "GET", gw.URL+"/api/kernels/00000000-0000-0000-0000-000000000000", "", nil, &e))
	assert.Equal(t, "Not Found", e["reason"])
	assert.Equal(t, 404, jupytertest.API(t, "DELETE", gw.URL+"/api/kernels/00000000-0000-0000-0000-000000000000", "", nil, nil))
}

func TestTokenInHeaderOrQuery(t *testing.T) {
	gw := startGateway(t, "s3cret")
	assert.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernelspecs", "s3cret", nil, nil))
	assert.Equal(t, 403, jupytertest.API(t, "GET", gw.URL+"/api/kernelspecs", "", nil, nil), "the empty 'token ' header is refused when a token is set")
	// The query is for websockets only (a browser cannot give them headers): a token in a URL
	// ends up in logs and histories.
	resp, err := http.Get(gw.URL + "/api/kernelspecs?token=s3cret")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 403, resp.StatusCode)
	assert.Contains(t, string(body), "Authorization")
	var m map[string]any
	require.Equal(t, 201, jupytertest.API(t, "POST", gw.URL+"/api/kernels", "s3cret", map[string]any{"name": "python3"}, &m))
	ws, resp, err := websocket.DefaultDialer.Dial(strings.Replace(gw.URL, "http", "ws", 1)+"/api/kernels/"+m["id"].(string)+"/channels?token=s3cret", nil)
	require.NoError(t, err, "a websocket may carry the token in its query")
	resp.Body.Close()
	ws.Close()

	assert.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api", "", nil, nil), "the version endpoint is public, for probes")

	open := startGateway(t, "")
	assert.Equal(t, 200, jupytertest.API(t, "GET", open.URL+"/api/kernelspecs", "", nil, nil), "no token configured: the empty header is accepted")
}
