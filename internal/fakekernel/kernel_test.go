package fakekernel_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/fakekernel"
	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
)

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// start starts a fake kernel on free ports, whose log goes to logs, and closes it when the
// test ends.
func start(t testing.TB, logs *testenv.SyncBuffer) (*fakekernel.Kernel, *jupyter.ConnectionInfo) {
	t.Helper()
	info := kerneltest.NewConnectionInfo(t)
	if logs == nil {
		logs = &testenv.SyncBuffer{}
	}
	k, err := fakekernel.Start(info, fakekernel.Options{Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, k.Close())
		if t.Failed() {
			t.Logf("kernel log:\n%s", logs.String())
		}
	})
	return k, info
}

// dial connects a client with a live iopub.
func dial(t testing.TB, info *jupyter.ConnectionInfo) *kernelconn.Conn {
	t.Helper()
	c, err := kernelconn.Dial(testCtx(t), info, kernelconn.Options{Username: "test"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.WaitIOPub(testCtx(t)))
	return c
}

// client sends requests and reads what comes back, keeping every message it read.
type client struct {
	t    *testing.T
	c    *kernelconn.Conn
	seen []*jupyter.Message
}

func newClient(t *testing.T, info *jupyter.ConnectionInfo) *client {
	return &client{t: t, c: dial(t, info)}
}

func (cl *client) send(channel, msgType string, content any) *jupyter.Message {
	cl.t.Helper()
	m, err := cl.c.NewMessage(msgType, content)
	require.NoError(cl.t, err)
	require.NoError(cl.t, cl.c.Send(channel, m))
	return m
}

// until reads messages until one satisfies pred and returns it.
func (cl *client) until(what string, pred func(*jupyter.Message) bool) *jupyter.Message {
	cl.t.Helper()
	ctx := testCtx(cl.t)
	for {
		select {
		case m, ok := <-cl.c.Messages():
			require.True(cl.t, ok, "the connection closed while waiting for %s", what)
			cl.seen = append(cl.seen, m)
			if pred(m) {
				return m
			}
		case <-ctx.Done():
			cl.t.Fatalf("no %s", what)
		}
	}
}

// finish reads until both the reply to req and iopub idle for it have arrived; it returns the
// reply and req's iopub messages in order.
func (cl *client) finish(req *jupyter.Message) (*jupyter.Message, []*jupyter.Message) {
	cl.t.Helper()
	var reply *jupyter.Message
	idle := false
	done := func(m *jupyter.Message) bool {
		if m.Parent().MsgID == req.Header.MsgID {
			if m.Channel != jupyter.ChannelIOPub && strings.HasSuffix(m.Header.MsgType, "_reply") {
				reply = m
			}
			if st, ok := m.ExecutionState(); ok && st == "idle" {
				idle = true
			}
		}
		return reply != nil && idle
	}
	for _, m := range cl.seen { // some may have come while waiting for something else
		if done(m) {
			return reply, cl.iopub(req)
		}
	}
	cl.until("the reply and idle for "+req.Header.MsgType, done)
	return reply, cl.iopub(req)
}

// iopub is what was published so far for req.
func (cl *client) iopub(req *jupyter.Message) []*jupyter.Message {
	var out []*jupyter.Message
	for _, m := range cl.seen {
		if m.Channel == jupyter.ChannelIOPub && m.Parent().MsgID == req.Header.MsgID {
			out = append(out, m)
		}
	}
	return out
}

// types names messages: "status:busy", "execute_input", ...
func types(ms []*jupyter.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Header.MsgType
		if st, ok := m.ExecutionState(); ok {
			out[i] += ":" + st
		}
	}
	return out
}

func content(t *testing.T, m *jupyter.Message) map[string]any {
	t.Helper()
	var c map[string]any
	require.NoError(t, json.Unmarshal(m.Content, &c))
	return c
}

func TestKernelInfo(t *testing.T) {
	k, info := start(t, nil)
	cl := newClient(t, info)
	for _, channel := range []string{jupyter.ChannelShell, jupyter.ChannelControl} {
		req := cl.send(channel, "kernel_info_request", nil)
		reply, iopub := cl.finish(req)
		assert.Equal(t, "kernel_info_reply", reply.Header.MsgType)
		assert.Equal(t, channel, reply.Channel)
		assert.Equal(t, k.Session(), reply.Header.Session)
		assert.Equal(t, "5.3", reply.Header.Version)
		c := content(t, reply)
		assert.Equal(t, "ok", c["status"])
		assert.Equal(t, "5.3", c["protocol_version"])
		assert.Equal(t, "fake", c["implementation"])
		assert.Equal(t, "python", c["language_info"].(map[string]any)["name"])
		assert.Equal(t, []string{"status:busy", "status:idle"}, types(iopub), "busy and idle around the request on %s", channel)
	}
}

func TestExecutePrint(t *testing.T) {
	_, info := start(t, nil)
	cl := newClient(t, info)
	req := cl.send(jupyter.ChannelShell, "execute_request", map[string]any{"code": "print(6*7)", "silent": false})
	reply, iopub := cl.finish(req)
	assert.Equal(t, []string{"status:busy", "execute_input", "stream", "status:idle"}, types(iopub))
	assert.Equal(t, map[string]any{"name": "stdout", "text": "42\n"}, content(t, iopub[2]))
	assert.Equal(t, map[string]any{"code": "print(6*7)", "execution_count": float64(1)}, content(t, iopub[1]))
	assert.Equal(t, "execute_reply", reply.Header.MsgType)
	c := content(t, reply)
	assert.Equal(t, "ok", c["status"])
	assert.Equal(t, float64(1), c["execution_count"])

	// The project's own helper sees the same.
	res, err := cl.c.Execute(testCtx(t), "print(6*7)\nprint('and', 1/2)\n2**10")
	require.NoError(t, err)
	assert.Equal(t, "ok", res.Status)
	assert.Equal(t, "42\nand 0.5\n", res.Stdout)
	assert.Equal(t, []string{"1024"}, res.Results)
}

func TestExecutionCount(t *testing.T) {
	_, info := start(t, nil)
	cl := newClient(t, info)
	execute := func(code string, silent bool, userExpressions map[string]any) (map[string]any, []*jupyter.Message) {
		req := cl.send(jupyter.ChannelShell, "execute_request", map[string]any{
			"code": code, "silent": silent, "user_expressions": userExpressions,
		})
		reply, iopub := cl.finish(req)
		return content(t, reply), iopub
	}
	for i := 1; i <= 3; i++ {
		c, iopub := execute("1+1", false, nil)
		assert.Equal(t, float64(i), c["execution_count"])
		require.Len(t, iopub, 4)
		assert.Equal(t, "execute_result", iopub[2].Header.MsgType)
		assert.Equal(t, float64(i), content(t, iopub[2])["execution_count"])
	}

	// A silent helper call: no execute_input, no result, no count, and its user expressions
	// are answered.
	c, iopub := execute("2+2", true, map[string]any{"sum": "40+2", "other": "get_ipython().kernel", "bad": "1/0"})
	assert.Equal(t, []string{"status:busy", "status:idle"}, types(iopub))
	assert.Equal(t, float64(3), c["execution_count"])
	assert.Equal(t, map[string]any{
		"sum":   map[string]any{"status": "ok", "data": map[string]any{"text/plain": "42"}, "metadata": map[string]any{}},
		"other": map[string]any{"status": "ok", "data": map[string]any{"text/plain": "None"}, "metadata": map[string]any{}},
		"bad": map[string]any{"status": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
			"traceback": []any{"ZeroDivisionError: division by zero"}},
	}, c["user_expressions"])

	c, _ = execute("print(1)", false, nil)
	assert.Equal(t, float64(4), c["execution_count"], "the silent request did not count")
}

func TestExecuteErrorsAndEcho(t *testing.T) {
	_, info := start(t, nil)
	cl := newClient(t, info)
	res, err := cl.c.Execute(testCtx(t), "print('before')\n1/0")
	require.NoError(t, err)
	assert.Equal(t, "error", res.Status)
	assert.Equal(t, "ZeroDivisionError", res.EName)
	assert.Equal(t, "division by zero", res.EValue)
	assert.Equal(t, "before\n", res.Stdout, "output before the error is published")
	c := content(t, res.Reply)
	assert.Equal(t, []any{"Traceback (most recent call last):", "  Cell In[1], line 2", "ZeroDivisionError: division by zero"}, c["traceback"])

	// Code that is not the fake language is echoed, not an error.
	res, err = cl.c.Execute(testCtx(t), "import numpy as np\nx = np.arange(3)\n")
	require.NoError(t, err)
	assert.Equal(t, "ok", res.Status)
	assert.Equal(t, []string{"import numpy as np\nx = np.arange(3)"}, res.Results)
}

// sleepAndInterrupt starts a long sleep, interrupts it with interrupt once it runs and checks
// that it ends as an interrupted Python cell does.
func sleepAndInterrupt(t *testing.T, cl *client, interrupt func()) {
	req := cl.send(jupyter.ChannelShell, "execute_request", map[string]any{"code": "print('sleeping')\nsleep 600", "silent": false})
	cl.until("the output before the sleep", func(m *jupyter.Message) bool {
		return m.Parent().MsgID == req.Header.MsgID && m.Header.MsgType == "stream"
	})
	interrupt()
	reply, iopub := cl.finish(req)
	c := content(t, reply)
	assert.Equal(t, "error", c["status"])
	assert.Equal(t, "KeyboardInterrupt", c["ename"])
	assert.Equal(t, []string{"status:busy", "execute_input", "stream", "error", "status:idle"}, types(iopub))
	assert.Equal(t, "KeyboardInterrupt", content(t, iopub[3])["ename"])

	// The kernel goes on executing.
	res, err := cl.c.Execute(testCtx(t), "print(1+1)")
	require.NoError(t, err)
	assert.Equal(t, "2\n", res.Stdout)
}

func TestInterruptRequest(t *testing.T) {
	_, info := start(t, nil)
	cl := newClient(t, info)
	sleepAndInterrupt(t, cl, func() {
		req := cl.send(jupyter.ChannelControl, "interrupt_request", nil)
		reply := cl.until("interrupt_reply", func(m *jupyter.Message) bool {
			return m.Channel == jupyter.ChannelControl && m.Parent().MsgID == req.Header.MsgID
		})
		assert.Equal(t, "interrupt_reply", reply.Header.MsgType)
		assert.Equal(t, "ok", content(t, reply)["status"])
	})
}

func TestInterruptMethod(t *testing.T) {
	k, info := start(t, nil)
	cl := newClient(t, info)
	k.Interrupt() // nothing runs: nothing happens
	sleepAndInterrupt(t, cl, k.Interrupt)
}

func TestShutdownEndsRun(t *testing.T) {
	info := kerneltest.NewConnectionInfo(t)
	ran := make(chan error, 1)
	go func() { ran <- fakekernel.Run(context.Background(), info, fakekernel.Options{}) }()
	cl := newClient(t, info)
	require.NoError(t, cl.c.Heartbeat(testCtx(t), 5*time.Second))

	req := cl.send(jupyter.ChannelControl, "shutdown_request", map[string]any{"restart": true})
	reply, _ := cl.finish(req)
	assert.Equal(t, "shutdown_reply", reply.Header.MsgType)
	assert.Equal(t, map[string]any{"status": "ok", "restart": true}, content(t, reply))
	assert.Contains(t, types(cl.iopub(req)), "shutdown_reply", "published on iopub too, as ipykernel does")
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-testCtx(t).Done():
		t.Fatal("Run did not return after shutdown_request")
	}
	assert.Error(t, cl.c.Heartbeat(testCtx(t), time.Second), "the stopped kernel has no heartbeat")
}

func TestShutdownOnShell(t *testing.T) {
	k, info := start(t, nil)
	cl := newClient(t, info)
	req := cl.send(jupyter.ChannelShell, "shutdown_request", map[string]any{"restart": false})
	reply, _ := cl.finish(req)
	assert.Equal(t, map[string]any{"status": "ok", "restart": false}, content(t, reply))
	select {
	case <-k.Done():
		assert.NoError(t, k.Err())
	case <-testCtx(t).Done():
		t.Fatal("the kernel did not stop after shutdown_request")
	}
}

func TestCloseEndsARunningExecution(t *testing.T) {
	k, info := start(t, nil)
	cl := newClient(t, info)
	req := cl.send(jupyter.ChannelShell, "execute_request", map[string]any{"code": "sleep 600", "silent": false})
	cl.until("execute_input", func(m *jupyter.Message) bool {
		return m.Parent().MsgID == req.Header.MsgID && m.Header.MsgType == "execute_input"
	})
	require.NoError(t, k.Close())
	<-k.Done()
}

func TestHeartbeat(t *testing.T) {
	_, info := start(t, nil)
	c := dial(t, info)
	for range 3 {
		require.NoError(t, c.Heartbeat(testCtx(t), 5*time.Second))
	}
}

func TestCommsAndIntrospection(t *testing.T) {
	_, info := start(t, nil)
	cl := newClient(t, info)
	reply, _ := cl.finish(cl.send(jupyter.ChannelShell, "comm_info_request", map[string]any{}))
	assert.Equal(t, "comm_info_reply", reply.Header.MsgType)
	assert.Equal(t, map[string]any{"status": "ok", "comms": map[string]any{}}, content(t, reply))

	open := cl.send(jupyter.ChannelShell, "comm_open", map[string]any{"comm_id": "c1", "target_name": "jupyter.widget", "data": map[string]any{}})
	closed := cl.until("comm_close", func(m *jupyter.Message) bool {
		return m.Parent().MsgID == open.Header.MsgID && m.Header.MsgType == "comm_close"
	})
	assert.Equal(t, "c1", content(t, closed)["comm_id"])

	for req, want := range map[string]string{
		"complete_request": "complete_reply", "inspect_request": "inspect_reply",
		"is_complete_request": "is_complete_reply", "history_request": "history_reply",
	} {
		reply, _ := cl.finish(cl.send(jupyter.ChannelShell, req, map[string]any{"code": "pri", "cursor_pos": 3}))
		assert.Equal(t, want, reply.Header.MsgType)
		status := "ok"
		if req == "is_complete_request" {
			status = "complete" // is_complete_reply's status is the answer
		}
		assert.Equal(t, status, content(t, reply)["status"], req)
	}
}

func TestBadMessagesDropped(t *testing.T) {
	logs := &testenv.SyncBuffer{}
	_, info := start(t, logs)
	good := newClient(t, info)

	// A client with the wrong key: its request is dropped, and what the kernel publishes is
	// refused by it.
	wrong := *info
	wrong.Key = "not-the-key"
	bad, err := kernelconn.Dial(testCtx(t), &wrong, kernelconn.Options{})
	require.NoError(t, err)
	defer bad.Close()
	badReq, err := bad.NewMessage("kernel_info_request", nil)
	require.NoError(t, err)
	require.NoError(t, bad.Send(jupyter.ChannelShell, badReq))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), jupyter.ErrBadSignature.Error()) },
		20*time.Second, 10*time.Millisecond, "the kernel logs the dropped message")

	// Frames that are no Jupyter message at all.
	raw := zmq4.NewDealer(testCtx(t))
	defer raw.Close()
	ep, err := info.Endpoint(jupyter.ChannelShell)
	require.NoError(t, err)
	require.NoError(t, raw.Dial(ep))
	require.NoError(t, raw.Send(zmq4.NewMsgFrom([]byte(jupyter.Delimiter), []byte("sig"), []byte("{not json"))))
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), jupyter.ErrMalformed.Error()) },
		20*time.Second, 10*time.Millisecond, "the kernel logs the malformed message")

	// The kernel still answers, and never answered the wrongly signed request.
	res, err := good.c.Execute(testCtx(t), "print(6*7)")
	require.NoError(t, err)
	assert.Equal(t, "42\n", res.Stdout)
	assert.Empty(t, good.iopub(badReq), "no status for the wrongly signed request")
	select {
	case m := <-bad.Messages():
		t.Fatalf("the wrong-key client got a %s", m.Header.MsgType)
	default:
	}
}

func TestEmptyKeyMeansUnsigned(t *testing.T) {
	info := kerneltest.NewConnectionInfo(t)
	info.Key = ""
	k, err := fakekernel.Start(info, fakekernel.Options{})
	require.NoError(t, err)
	defer k.Close()
	res, err := dial(t, info).Execute(testCtx(t), "print(6*7)")
	require.NoError(t, err)
	assert.Equal(t, "42\n", res.Stdout)
}

func TestBindFailure(t *testing.T) {
	info := kerneltest.NewConnectionInfo(t)
	taken, err := net.Listen("tcp", net.JoinHostPort(info.IP, strconv.Itoa(info.IOPubPort)))
	require.NoError(t, err)
	_, err = fakekernel.Start(info, fakekernel.Options{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "binding the iopub channel on tcp://127.0.0.1:"+strconv.Itoa(info.IOPubPort))
	assert.Contains(t, err.Error(), "address already in use")

	// The sockets bound before the failure were closed: the kernel starts once the port is free.
	require.NoError(t, taken.Close())
	k, err := fakekernel.Start(info, fakekernel.Options{})
	require.NoError(t, err)
	require.NoError(t, k.Close())

	_, err = fakekernel.Start(&jupyter.ConnectionInfo{Transport: "tcp", SignatureScheme: jupyter.SignatureScheme}, fakekernel.Options{})
	assert.ErrorContains(t, err, "not a TCP port")
}

func TestMalformedRequestGetsNoReply(t *testing.T) {
	logs := &testenv.SyncBuffer{}
	_, info := start(t, logs)
	cl := newClient(t, info)
	bad := cl.send(jupyter.ChannelShell, "execute_request", map[string]any{"code": 42})
	cl.until("idle for the malformed request", func(m *jupyter.Message) bool {
		st, _ := m.ExecutionState()
		return m.Parent().MsgID == bad.Header.MsgID && st == "idle"
	})
	// Replies on shell keep their order: had the bad request been answered, that answer would
	// come before this one's.
	reply, _ := cl.finish(cl.send(jupyter.ChannelShell, "kernel_info_request", nil))
	assert.Equal(t, "kernel_info_reply", reply.Header.MsgType)
	for _, m := range cl.seen {
		assert.False(t, m.Channel == jupyter.ChannelShell && m.Parent().MsgID == bad.Header.MsgID, "a reply to the malformed request")
	}
	assert.Contains(t, logs.String(), "dropped a malformed request")
}
