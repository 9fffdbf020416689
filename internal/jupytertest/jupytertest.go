// Package jupytertest drives Jupyter from tests as a user's browser and notebook server would:
// Debian's stock Jupyter Server, its REST API, and kernel websockets in Jupyter's legacy
// protocol.
package jupytertest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/process"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// LogWriter sends output to the test log.
type LogWriter struct{ T testing.TB }

// Write implements io.Writer.
func (w LogWriter) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // the test may have ended
	w.T.Logf("%s", bytes.TrimRight(p, "\n"))
	return len(p), nil
}

// API calls a Jupyter REST API (ours or Jupyter Server's) and decodes the JSON answer.
func API(t testing.TB, method, url, token string, body any, out any) int {
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

// WSClient speaks Jupyter's legacy websocket protocol, as a browser does.
type WSClient struct {
	t testing.TB
	// WS is the websocket.
	WS      *websocket.Conn
	session string
	// Msgs delivers what the kernel sends; closed with the websocket.
	Msgs chan *jupyter.Message
}

// DialWS connects to a kernel websocket (ws:// or http:// URL) and handshakes.
func DialWS(t testing.TB, url, token string) *WSClient {
	t.Helper()
	c := DialWSRaw(t, url, token)
	c.Handshake()
	return c
}

// DialWSRaw connects to a kernel websocket without a handshake: what is sent first is the
// client's first message (a cell run at once, a resume driven by the cell itself).
func DialWSRaw(t testing.TB, url, token string) *WSClient {
	t.Helper()
	url = strings.Replace(url, "http://", "ws://", 1)
	h := http.Header{}
	h.Set("Authorization", "token "+token)
	ws, resp, err := websocket.DefaultDialer.Dial(url, h)
	if resp != nil && resp.Body != nil {
		defer resp.Body.Close()
	}
	require.NoError(t, err)
	c := &WSClient{t: t, WS: ws, session: jupyter.NewID(), Msgs: make(chan *jupyter.Message, 1024)}
	go func() {
		defer close(c.Msgs)
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
				c.Msgs <- m
			}
		}
	}()
	t.Cleanup(func() { _ = ws.Close() })
	return c
}

// WaitStatus waits for an iopub status message saying state (the gateway's "dead" for a
// kernel that could not start, for example). It consumes the messages it reads.
func (c *WSClient) WaitStatus(state string, timeout time.Duration) {
	c.t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		m := c.next(deadline, func() string { return fmt.Sprintf("status %q within %s (seen %v)", state, timeout, seen) })
		if st, isStatus := m.ExecutionState(); isStatus {
			seen = append(seen, st)
			if st == state {
				return
			}
		}
	}
}

// next returns the next message from the websocket. When the websocket closes or the
// deadline passes first, it fails the test, saying it waited for what().
func (c *WSClient) next(deadline <-chan time.Time, what func() string) *jupyter.Message {
	c.t.Helper()
	select {
	case m, ok := <-c.Msgs:
		if !ok {
			c.t.Fatalf("the websocket closed while waiting for %s", what())
		}
		return m
	case <-deadline:
		c.t.Fatalf("no %s", what())
		return nil
	}
}

// WaitStdout waits for a stdout stream, whose parent is req, that contains want, and returns
// its text. It consumes the messages it reads.
func (c *WSClient) WaitStdout(req *jupyter.Message, want string, timeout time.Duration) string {
	c.t.Helper()
	return c.waitStream(req, "stdout", want, timeout)
}

// WaitStderr waits for a stderr stream, whose parent is req, that contains want (the
// gateway's lines about a kernel that starts or resumes) and returns its text. It consumes
// the messages it reads.
func (c *WSClient) WaitStderr(req *jupyter.Message, want string, timeout time.Duration) string {
	c.t.Helper()
	return c.waitStream(req, "stderr", want, timeout)
}

func (c *WSClient) waitStream(req *jupyter.Message, name, want string, timeout time.Duration) string {
	c.t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		m := c.next(deadline, func() string {
			return fmt.Sprintf("%s line %q for %s within %s (seen: %q)", name, want, req.Header.MsgType, timeout, seen)
		})
		if m.Header.MsgType != "stream" || m.Parent().MsgID != req.Header.MsgID {
			continue
		}
		var s struct{ Name, Text string }
		_ = json.Unmarshal(m.Content, &s)
		if s.Name != name {
			continue
		}
		seen = append(seen, s.Text)
		if strings.Contains(s.Text, want) {
			return s.Text
		}
	}
}

// Handshake sends kernel_info_request until one is answered, as frontends do on connect:
// Jupyter Server 1.23 drops messages that arrive before its own websocket to the gateway is
// open, so the first request may be lost.
func (c *WSClient) Handshake() {
	c.t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		req := c.Send("shell", "kernel_info_request", map[string]any{})
		wait := time.After(time.Second)
	recv:
		for {
			select {
			case m, ok := <-c.Msgs:
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

// Send sends a message of msgType on channel.
func (c *WSClient) Send(channel, msgType string, content any) *jupyter.Message {
	c.t.Helper()
	m, err := jupyter.NewMessage(msgType, c.session, "tester", content, nil)
	require.NoError(c.t, err)
	m.Channel = channel
	data, err := jupyter.EncodeWSJSON(m)
	require.NoError(c.t, err)
	require.NoError(c.t, c.WS.WriteMessage(websocket.TextMessage, data))
	return m
}

// Execution is what an execute_request produced, as seen through a websocket.
type Execution struct {
	// Stdout is the stdout stream output.
	Stdout string
	// Stderr is the stderr stream output: the gateway's own lines (what a starting kernel
	// waits for, that it resumed) arrive here too.
	Stderr string
	// EName is the error name, if the cell raised.
	EName string
	// Status is the execute_reply status.
	Status string
	// EValue is the error's value.
	EValue string
	// Statuses are the iopub execution states seen, in order (the gateway's "starting" included).
	Statuses []string
}

// Execute runs code and collects its outputs until the reply and the idle status arrive.
func (c *WSClient) Execute(code string, timeout time.Duration) Execution {
	c.t.Helper()
	req := c.Send("shell", "execute_request", map[string]any{"code": code, "silent": false, "store_history": true, "allow_stdin": false})
	return c.Collect(req, timeout)
}

// Collect gathers the outputs of req until its reply and the idle status arrive.
func (c *WSClient) Collect(req *jupyter.Message, timeout time.Duration) Execution {
	c.t.Helper()
	var ex Execution
	var out, errOut strings.Builder
	replied, idle := false, false
	deadline := time.After(timeout)
	for !replied || !idle {
		m := c.next(deadline, func() string {
			return fmt.Sprintf("complete answer to %s within %s (stdout so far %q)", req.Header.MsgType, timeout, out.String())
		})
		if st, isStatus := m.ExecutionState(); isStatus {
			ex.Statuses = append(ex.Statuses, st)
		}
		if m.Parent().MsgID != req.Header.MsgID {
			continue
		}
		switch m.Header.MsgType {
		case "stream":
			var s struct{ Name, Text string }
			_ = json.Unmarshal(m.Content, &s)
			if s.Name == "stderr" {
				errOut.WriteString(s.Text)
			} else {
				out.WriteString(s.Text)
			}
		case "error":
			var e struct{ Ename, Evalue string }
			_ = json.Unmarshal(m.Content, &e)
			ex.EName, ex.EValue = e.Ename, e.Evalue
		case "execute_reply":
			var r struct{ Status string }
			_ = json.Unmarshal(m.Content, &r)
			ex.Status, replied = r.Status, true
		case "status":
			if st, _ := m.ExecutionState(); st == "idle" {
				idle = true
			}
		}
	}
	ex.Stdout, ex.Stderr = out.String(), errOut.String()
	return ex
}

// Server is one of the stock Jupyter Servers the tests run as the gateway's client.
type Server struct {
	// Name says which, for test names.
	Name string
	// rootfs runs it from the JupyterLab 4 root filesystem (Rootfs) rather than the host.
	rootfs bool
}

var (
	// Server1 is Debian 12's Jupyter Server 1.23, on the host.
	Server1 = Server{Name: "JupyterServer1.23"}
	// Server2 is Debian 13's Jupyter Server 2.15 with JupyterLab 4.0, what users run, from
	// the rootfs.
	Server2 = Server{Name: "JupyterServer2.15", rootfs: true}
	// Servers are both, for tests that must pass with each.
	Servers = []Server{Server1, Server2}
)

// JupyterServer is a running stock Jupyter Server.
type JupyterServer struct {
	URL   string
	Token string
}

// ServerOptions say how to start a Jupyter Server.
type ServerOptions struct {
	// Server is which one (default Server1).
	Server Server
	// Lab serves JupyterLab (Server2 only), as `jupyter lab` does.
	Lab bool
	// Notebook6 serves the classic Notebook 6 (Server1's host only), as `jupyter notebook`
	// does on Debian 12.
	Notebook6 bool
	// GatewayURL, when set, sends every kernel to that gateway (--gateway-url); else the
	// server runs its own local kernels.
	GatewayURL string
	// GatewayToken is what the server sends the gateway.
	GatewayToken string
	// Env are extra variables (KERNEL_USERNAME=alice, but for Notebook6, and
	// KERNEL_LAUNCH_TIMEOUT=60 are set).
	Env []string
}

// StartJupyterServer runs Jupyter Server 1.23, with --gateway-url when gatewayURL is set
// (gatewayToken is what it sends to the gateway), else with its own local kernels.
func StartJupyterServer(t testing.TB, gatewayURL, gatewayToken string) *JupyterServer {
	t.Helper()
	return StartServer(t, ServerOptions{GatewayURL: gatewayURL, GatewayToken: gatewayToken})
}

// StartServer runs the stock Jupyter Server opts names, stopped when the test ends.
func StartServer(t testing.TB, opts ServerOptions) *JupyterServer {
	t.Helper()
	ports, err := kerneltest.FreePorts("127.0.0.1", 1)
	require.NoError(t, err)
	home := t.TempDir()
	inHome := home
	if opts.Server.rootfs {
		inHome = "/home/tester"
	}
	token := "notebook-" + jupyter.NewID()
	app, cfg := "jupyter_server", "ServerApp"
	switch {
	case opts.Lab:
		app = "jupyterlab"
	case opts.Notebook6:
		app, cfg = "notebook", "NotebookApp"
	}
	args := []string{"-m", app, "--allow-root", "--no-browser",
		"--" + cfg + ".ip=127.0.0.1", "--" + cfg + ".port=" + strconv.Itoa(ports[0]), "--" + cfg + ".port_retries=0",
		"--" + cfg + ".token=" + token}
	if opts.Notebook6 {
		args = append(args, "--NotebookApp.notebook_dir="+inHome)
	} else {
		args = append(args, "--ServerApp.root_dir="+inHome)
	}
	if opts.GatewayURL != "" {
		args = append(args, "--gateway-url="+opts.GatewayURL, "--GatewayClient.request_timeout=120")
	}
	if opts.GatewayToken != "" {
		args = append(args, "--GatewayClient.auth_token="+opts.GatewayToken)
	}
	env := []string{"JUPYTER_CONFIG_DIR=" + filepath.Join(inHome, "config"), "JUPYTER_DATA_DIR=" + filepath.Join(inHome, "data"), "KERNEL_LAUNCH_TIMEOUT=60"}
	if !opts.Notebook6 {
		// Notebook 6.4's gateway client puts ?user= before the kernelspec's name in
		// /api/kernelspecs/{name} when KERNEL_USERNAME is set, and then fails on the list it
		// gets back: its users run without it.
		env = append(env, "KERNEL_USERNAME=alice")
	}
	env = append(env, opts.Env...)
	var cmd *exec.Cmd
	if opts.Server.rootfs {
		env = append(env, "HOME="+inHome, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"JUPYTER_RUNTIME_DIR="+filepath.Join(inHome, "runtime"))
		cmd = RootfsCommand(Rootfs(t), t.TempDir(), map[string]string{home: inHome}, env, inHome, append([]string{"python3"}, args...)...)
	} else {
		cmd = exec.Command(kerneltest.Python, args...)
		cmd.Env = append(kerneltest.Env(home), env...)
		cmd.Dir = home
	}
	cmd.Stdout, cmd.Stderr = LogWriter{T: t}, LogWriter{T: t}
	p, err := process.StartCmd("jupyter server", cmd)
	require.NoError(t, err)
	t.Cleanup(p.Kill)
	js := &JupyterServer{URL: fmt.Sprintf("http://127.0.0.1:%d", ports[0]), Token: token}
	require.NoError(t, process.WaitHTTP(context.Background(), p, js.URL+"/api?token="+token, nil, 60*time.Second), "jupyter server starts")
	return js
}
