package gateway_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
)

// tokens is an Authenticator with one identity per token, as the Kubernetes credentials give.
type tokens map[string]gateway.Identity

func (t tokens) Authenticate(token string) (gateway.Identity, bool) {
	id, ok := t[token]
	return id, ok
}

var identities = tokens{
	"alice-token": {Name: "team/alice-notebook", User: "alice"},
	"bob-token":   {Name: "team/bob-notebook", User: "bob"},
	"bad-token":   {Name: "team/bad-notebook", User: "bad_guy"},
	"admin-token": {Name: "admin", Admin: true},
}

func identityGateway(t *testing.T) *testGateway {
	gw := startGatewayWith(t, "", nil, func(o *gateway.Options) { o.Auth = identities })
	return gw
}

// TestAUsersKernelsAreTheirs: a kernel belongs to who started it. Another notebook server
// does not see it (list) and every per-kernel endpoint answers 404 for it, as for a kernel
// that does not exist; the admin sees and manages all.
func TestAUsersKernelsAreTheirs(t *testing.T) {
	gw := identityGateway(t)
	var m map[string]any
	require.Equal(t, 201, jupytertest.API(t, "POST", gw.URL+"/api/kernels", "alice-token", map[string]any{"name": "python3", "env": map[string]string{"KERNEL_USERNAME": "mallory"}}, &m))
	id := m["id"].(string)
	ws := jupytertest.DialWS(t, gw.URL+"/api/kernels/"+id+"/channels", "alice-token")
	ex := ws.Execute("import os; print(os.environ['KERNEL_USERNAME'])", time.Minute)
	assert.Equal(t, "alice\n", ex.Stdout, "the kernel runs for the identity's user, whatever KERNEL_USERNAME the client claimed")

	var list []map[string]any
	require.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernels", "bob-token", nil, &list))
	assert.Empty(t, list, "bob's notebook does not see alice's kernel")
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/kernels/" + id}, {"POST", "/api/kernels/" + id + "/interrupt"},
		{"POST", "/api/kernels/" + id + "/restart"}, {"DELETE", "/api/kernels/" + id},
	} {
		var e map[string]any
		assert.Equal(t, 404, jupytertest.API(t, c.method, gw.URL+c.path, "bob-token", map[string]any{}, &e), "%s %s as bob", c.method, c.path)
		assert.NotContains(t, e["message"], "alice", "no hint that the kernel exists")
	}
	h := http.Header{}
	h.Set("Authorization", "token bob-token")
	_, resp, err := websocket.DefaultDialer.Dial(strings.Replace(gw.URL, "http", "ws", 1)+"/api/kernels/"+id+"/channels", h)
	require.Error(t, err)
	assert.Equal(t, 404, resp.StatusCode, "bob cannot open alice's kernel's websocket")

	require.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernels", "admin-token", nil, &list))
	require.Len(t, list, 1, "the admin sees every kernel")
	require.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernels/"+id, "admin-token", nil, nil))
	require.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernels/"+id, "alice-token", nil, nil))
	require.Equal(t, 204, jupytertest.API(t, "DELETE", gw.URL+"/api/kernels/"+id, "admin-token", nil, nil))
	assert.Equal(t, 403, jupytertest.API(t, "GET", gw.URL+"/api/kernels", "no-such-token", nil, nil))
}

// TestKernelspecAuthorization follows Enterprise Gateway's test_authorization: a kernelspec's
// unauthorizedUsers are refused with 403 and a message naming the kernelspec; others start.
func TestKernelspecAuthorization(t *testing.T) {
	gw := startGatewayWith(t, "", func(p *gateway.LocalProvisioner) {}, func(o *gateway.Options) {
		o.Auth = identities
		o.Specs = restrictSpecs{o.Specs}
	})
	var e map[string]any
	require.Equal(t, 403, jupytertest.API(t, "POST", gw.URL+"/api/kernels", "bad-token", map[string]any{"name": "python3"}, &e))
	assert.Contains(t, e["message"], `user "bad_guy" is not authorized to start kernels of kernelspec "python3"`)
	var list []map[string]any
	require.Equal(t, 200, jupytertest.API(t, "GET", gw.URL+"/api/kernels", "admin-token", nil, &list))
	assert.Empty(t, list, "nothing was started")
	require.Equal(t, 201, jupytertest.API(t, "POST", gw.URL+"/api/kernels", "bob-token", map[string]any{"name": "python3"}, &e), "bob may start it: %v", e)
}

// restrictSpecs marks every kernelspec as Enterprise Gateway's test does: bad_guy may not.
type restrictSpecs struct{ gateway.SpecSource }

func (r restrictSpecs) List(ctx context.Context) ([]gateway.KernelSpec, string, error) {
	specs, def, err := r.SpecSource.List(ctx)
	for i := range specs {
		specs[i].UnauthorizedUsers = []string{"bad_guy"}
	}
	return specs, def, err
}

// TestWebsocketOriginIsChecked: a browser page of another origin cannot open a kernel's
// websocket; the gateway's own origin and notebook servers (no Origin) can.
func TestWebsocketOriginIsChecked(t *testing.T) {
	gw := startGateway(t, "")
	id := startKernel(t, gw)
	url := strings.Replace(gw.URL, "http", "ws", 1) + "/api/kernels/" + id + "/channels"
	dial := func(origin string) int {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(url, h)
		if err == nil {
			ws.Close()
		}
		if resp == nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusSwitchingProtocols, dial(""), "a notebook server sends no Origin")
	assert.Equal(t, http.StatusSwitchingProtocols, dial(gw.URL), "the gateway's own origin")
	assert.Equal(t, http.StatusForbidden, dial("https://evil.example.com"), "another site's page")
	gw.Settings.set(func(s *gateway.Settings) { s.AllowedOrigins = []string{"https://lab.example.com"} })
	assert.Equal(t, http.StatusSwitchingProtocols, dial("https://lab.example.com"), "an origin the settings allow")
}

// TestAHalfOpenClientIsDroppedAndStopsBlockingCulling: a client that stops answering (its
// connection half open: no reads, no pongs) is dropped after twice the ping interval, and no
// longer counts as connected, so an idle kernel is culled again.
func TestAHalfOpenClientIsDroppedAndStopsBlockingCulling(t *testing.T) {
	gw := startGatewayWith(t, "", nil, func(o *gateway.Options) { o.PingInterval = 200 * time.Millisecond })
	gw.Settings.set(func(s *gateway.Settings) { s.CullIdleTimeout = 500 * time.Millisecond })
	id := startKernel(t, gw)
	// A raw websocket client that handshakes and then never reads or answers pings again.
	c, err := net.Dial("tcp", strings.TrimPrefix(gw.URL, "http://"))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Write([]byte("GET /api/kernels/" + id + "/channels HTTP/1.1\r\nHost: " + strings.TrimPrefix(gw.URL, "http://") +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		m, _ := model(t, gw, id)
		return m["connections"] == float64(1)
	}, 10*time.Second, 20*time.Millisecond, "the client is connected")
	// (A connected kernel is not culled: TestCullSparesConnectedKernelsUnlessCullConnected.)
	require.Eventually(t, func() bool {
		m, _ := model(t, gw, id)
		return m["connections"] == float64(0)
	}, 10*time.Second, 20*time.Millisecond, "the silent client is dropped within its read deadline")
	require.Eventually(t, func() bool {
		gw.G.CullOnce(context.Background())
		_, code := model(t, gw, id)
		return code == 404
	}, 30*time.Second, 100*time.Millisecond, "the idle kernel is culled once nothing is connected")
}
