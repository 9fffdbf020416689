package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// mutableSettings is a SettingsSource a test can change.
type mutableSettings struct {
	mu sync.Mutex
	s  gateway.Settings
}

func (m *mutableSettings) Settings() gateway.Settings {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s
}

func (m *mutableSettings) set(f func(*gateway.Settings)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(&m.s)
}

// kernelDir writes a kernels directory with Debian's ipykernel as "python3" (and its logo) and
// a message-mode variant.
func kernelDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	write := func(name, mode string) {
		d := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(d, 0o755))
		spec := map[string]any{
			"argv": kerneltest.IPyKernelArgv, "display_name": "Python 3 (" + name + ")", "language": "python",
			"interrupt_mode": mode, "metadata": map[string]any{"debugger": true},
		}
		data, _ := json.Marshal(spec)
		require.NoError(t, os.WriteFile(filepath.Join(d, "kernel.json"), data, 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(d, "logo-64x64.png"), []byte("\x89PNG fake"), 0o644))
	}
	write("python3", "signal")
	write("python3-message", "message")
	return dir
}

// testGateway is a gateway with the local provisioner, served on a real port.
type testGateway struct {
	URL      string
	G        *gateway.Gateway
	Settings *mutableSettings
	Token    string
}

func startGateway(t *testing.T, token string) *testGateway {
	t.Helper()
	settings := &mutableSettings{s: gateway.Settings{CullInterval: time.Hour}}
	prov := &gateway.LocalProvisioner{RuntimeDir: t.TempDir(), Env: kerneltest.Env(t.TempDir()), Output: logWriter{t}}
	g := gateway.New(gateway.Options{
		Provisioner: prov,
		Specs:       &gateway.DirSpecSource{Dirs: []string{kernelDir(t)}},
		Settings:    settings,
		Token:       token,
		Log:         slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version:     "test",
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		<-done
		prov.Close()
	})
	return &testGateway{URL: "http://" + l.Addr().String(), G: g, Settings: settings, Token: token}
}

// logWriter sends output to the test log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// api calls a Jupyter REST API (ours or Jupyter Server's) and decodes the JSON answer.
func api(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	req.Header.Set("Authorization", "token "+token)
	resp, err := (&http.Client{Timeout: 2 * time.Minute}).Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil && len(data) > 0 {
		require.NoError(t, json.Unmarshal(data, out), "%s %s: %s", method, url, data)
	}
	return resp.StatusCode
}

// wsClient speaks Jupyter's legacy websocket protocol, as a browser does.
type wsClient struct {
	t       *testing.T
	ws      *websocket.Conn
	session string
	msgs    chan *jupyter.Message
}

func dialWS(t *testing.T, url, token string) *wsClient {
	t.Helper()
	url = strings.Replace(url, "http://", "ws://", 1)
	h := http.Header{}
	h.Set("Authorization", "token "+token)
	ws, resp, err := websocket.DefaultDialer.Dial(url, h)
	if resp != nil && resp.Body != nil {
		defer resp.Body.Close()
	}
	require.NoError(t, err)
	c := &wsClient{t: t, ws: ws, session: jupyter.NewID(), msgs: make(chan *jupyter.Message, 1024)}
	go func() {
		defer close(c.msgs)
		for {
			typ, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var m *jupyter.Message
			if typ == websocket.TextMessage {
				m, err = jupyter.DecodeWSJSON(data, jupyter.DefaultLimits)
			} else {
				m, err = jupyter.DecodeWSBinary(data, jupyter.DefaultLimits)
			}
			if err == nil {
				c.msgs <- m
			}
		}
	}()
	t.Cleanup(func() { _ = ws.Close() })
	c.handshake()
	return c
}

// handshake sends kernel_info_request until one is answered, as frontends do on connect:
// Jupyter Server 1.23 drops messages that arrive before its own websocket to the gateway is
// open, so the first request may be lost.
func (c *wsClient) handshake() {
	c.t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		req := c.send("shell", "kernel_info_request", map[string]any{})
		wait := time.After(time.Second)
	recv:
		for {
			select {
			case m, ok := <-c.msgs:
				if !ok {
					c.t.Fatal("the websocket closed during the handshake")
				}
				if m.Header.MsgType == "kernel_info_reply" && m.Parent().MsgID == req.Header.MsgID {
					return
				}
			case <-wait:
				break recv
			case <-deadline:
				c.t.Fatal("no kernel_info_reply through the websocket")
			}
		}
	}
}

func (c *wsClient) send(channel, msgType string, content any) *jupyter.Message {
	c.t.Helper()
	m, err := jupyter.NewMessage(msgType, c.session, "tester", content, nil)
	require.NoError(c.t, err)
	m.Channel = channel
	data, err := jupyter.EncodeWSJSON(m)
	require.NoError(c.t, err)
	require.NoError(c.t, c.ws.WriteMessage(websocket.TextMessage, data))
	return m
}

// execution is what an execute_request produced, as seen through a websocket.
type execution struct {
	stdout   string
	ename    string
	status   string
	statuses []string // iopub execution states seen, in order (the gateway's "starting" included)
}

// execute runs code and collects its outputs until the reply and the idle status arrive.
func (c *wsClient) execute(code string, timeout time.Duration) execution {
	c.t.Helper()
	req := c.send("shell", "execute_request", map[string]any{"code": code, "silent": false, "store_history": true, "allow_stdin": false})
	return c.collect(req, timeout)
}

func (c *wsClient) collect(req *jupyter.Message, timeout time.Duration) execution {
	c.t.Helper()
	var ex execution
	var out strings.Builder
	replied, idle := false, false
	deadline := time.After(timeout)
	for !replied || !idle {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				c.t.Fatalf("the websocket closed while waiting for %s", req.Header.MsgType)
			}
			if st, isStatus := m.ExecutionState(); isStatus {
				ex.statuses = append(ex.statuses, st)
			}
			if m.Parent().MsgID != req.Header.MsgID {
				continue
			}
			switch m.Header.MsgType {
			case "stream":
				var s struct{ Text string }
				_ = json.Unmarshal(m.Content, &s)
				out.WriteString(s.Text)
			case "error":
				var e struct{ Ename string }
				_ = json.Unmarshal(m.Content, &e)
				ex.ename = e.Ename
			case "execute_reply":
				var r struct{ Status string }
				_ = json.Unmarshal(m.Content, &r)
				ex.status, replied = r.Status, true
			case "status":
				if st, _ := m.ExecutionState(); st == "idle" {
					idle = true
				}
			}
		case <-deadline:
			c.t.Fatalf("no complete answer to %s within %s (stdout so far %q)", req.Header.MsgType, timeout, out.String())
		}
	}
	ex.stdout = out.String()
	return ex
}

// jupyterServer is Debian's stock Jupyter Server, pointed at a gateway.
type jupyterServer struct {
	URL   string
	Token string
}

// startJupyterServer runs Jupyter Server 1.23 with --gateway-url; gatewayToken is what it
// sends to the gateway.
func startJupyterServer(t *testing.T, gatewayURL, gatewayToken string) *jupyterServer {
	t.Helper()
	ports, err := kerneltest.FreePorts("127.0.0.1", 1)
	require.NoError(t, err)
	home := t.TempDir()
	token := "notebook-" + jupyter.NewID()
	args := []string{"-m", "jupyter_server", "--allow-root", "--no-browser",
		"--ServerApp.ip=127.0.0.1", "--ServerApp.port=" + strconv.Itoa(ports[0]), "--ServerApp.port_retries=0",
		"--ServerApp.token=" + token, "--ServerApp.root_dir=" + home,
		"--gateway-url=" + gatewayURL, "--GatewayClient.request_timeout=120"}
	if gatewayToken != "" {
		args = append(args, "--GatewayClient.auth_token="+gatewayToken)
	}
	cmd := exec.Command(kerneltest.Python, args...)
	cmd.Env = append(kerneltest.Env(home), "JUPYTER_CONFIG_DIR="+filepath.Join(home, "config"),
		"JUPYTER_DATA_DIR="+filepath.Join(home, "data"), "KERNEL_USERNAME=alice", "KERNEL_LAUNCH_TIMEOUT=60")
	cmd.Dir = home
	cmd.Stdout, cmd.Stderr = logWriter{t}, logWriter{t}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	js := &jupyterServer{URL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), Token: token}
	require.Eventually(t, func() bool {
		select {
		case <-exited:
			t.Fatal("jupyter server exited")
		default:
		}
		resp, err := http.Get(js.URL + "/api?token=" + token)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == 200
	}, 60*time.Second, 100*time.Millisecond, "jupyter server starts")
	return js
}
