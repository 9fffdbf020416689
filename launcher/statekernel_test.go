package launcher_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

// stateKernel is a real ipykernel and a connection to it, for the kernel-state tests.
type stateKernel struct {
	t    testing.TB
	k    *kerneltest.Kernel
	conn *kernelconn.Conn
}

// startStateKernel starts an ipykernel and connects to it. A kernel that dies before it
// answers (its free ports were taken between the choice and its bind) is replaced.
func startStateKernel(t testing.TB) *stateKernel {
	t.Helper()
	for attempt := 1; ; attempt++ {
		k := kerneltest.StartIPyKernel(t, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		go func() {
			select {
			case <-k.Done():
				cancel()
			case <-ctx.Done():
			}
		}()
		c, err := kernelconn.Dial(ctx, k.Info, kernelconn.Options{})
		if err == nil {
			err = c.WaitIOPub(ctx)
			if err != nil {
				_ = c.Close()
			}
		}
		cancel()
		select {
		case <-k.Done():
			if attempt < 3 {
				if err == nil {
					_ = c.Close()
				}
				t.Logf("the kernel exited before it answered (attempt %d), starting another", attempt)
				continue
			}
		default:
		}
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return &stateKernel{t: t, k: k, conn: c}
	}
}

// stop kills the kernel, as deleting its pod does.
func (s *stateKernel) stop() {
	_ = s.conn.Close()
	s.k.Kill()
}

// run executes a notebook cell and fails the test if it raised; it returns the cell's count.
func (s *stateKernel) run(code string) int {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := s.conn.Execute(ctx, code)
	require.NoError(s.t, err)
	require.Equal(s.t, "ok", res.Status, "%s\n%s: %s\n%s", code, res.EName, res.EValue, res.Stderr)
	var reply struct {
		ExecutionCount int `json:"execution_count"`
	}
	require.NoError(s.t, res.Reply.DecodeContent(&reply))
	return reply.ExecutionCount
}

// silentCall is what one silent user-expression request produced.
type silentCall struct {
	// value is the user expression's result (status, data, or ename/evalue).
	value json.RawMessage
	// executionCount is the execute_reply's.
	executionCount int
	// iopub are the types of the iopub messages the request caused.
	iopub []string
}

// call sends the execute_request the gateway sends for expr (launcher.StateExecuteContent) and
// collects the reply and the iopub traffic until the kernel is idle again.
func (s *stateKernel) call(expr string) silentCall {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	req, err := s.conn.NewMessage("execute_request", launcher.StateExecuteContent(expr))
	require.NoError(s.t, err)
	require.NoError(s.t, s.conn.Send(jupyter.ChannelShell, req))
	var out silentCall
	replied, idle := false, false
	for !replied || !idle {
		var m *jupyter.Message
		select {
		case m = <-s.conn.Messages():
		case <-ctx.Done():
			s.t.Fatalf("no reply to %s", expr)
		}
		if m == nil {
			s.t.Fatal("the kernel connection closed")
		}
		if m.Parent().MsgID != req.Header.MsgID {
			continue
		}
		switch {
		case m.Channel == jupyter.ChannelShell && m.Header.MsgType == "execute_reply":
			var r struct {
				Status          string                     `json:"status"`
				ExecutionCount  int                        `json:"execution_count"`
				UserExpressions map[string]json.RawMessage `json:"user_expressions"`
			}
			require.NoError(s.t, m.DecodeContent(&r))
			require.Equal(s.t, "ok", r.Status, string(m.Content))
			out.value, out.executionCount, replied = r.UserExpressions[launcher.StateExpressionKey], r.ExecutionCount, true
		case m.Channel == jupyter.ChannelIOPub:
			out.iopub = append(out.iopub, m.Header.MsgType)
			if st, _ := m.ExecutionState(); st == "idle" {
				idle = true
			}
		}
	}
	return out
}

// state calls a helper expression and parses its report.
func (s *stateKernel) state(expr string) (*launcher.StateReport, silentCall) {
	s.t.Helper()
	c := s.call(expr)
	r, err := launcher.ParseStateUserExpression(c.value)
	require.NoError(s.t, err)
	return r, c
}

// eval returns the text/plain of a Python expression evaluated silently in the user namespace.
func (s *stateKernel) eval(expr string) string {
	s.t.Helper()
	c := s.call(expr)
	var v struct {
		Status string            `json:"status"`
		Data   map[string]string `json:"data"`
		EName  string            `json:"ename"`
		EValue string            `json:"evalue"`
	}
	require.NoError(s.t, json.Unmarshal(c.value, &v))
	require.Equal(s.t, "ok", v.Status, "%s: %s: %s", expr, v.EName, v.EValue)
	return v.Data["text/plain"]
}

// evalStr evaluates an expression whose value is a str and returns that str. The str travels
// as ASCII JSON, whose Python repr escapes only backslashes and single quotes.
func (s *stateKernel) evalStr(expr string) string {
	s.t.Helper()
	text := s.eval("__import__('json').dumps(" + expr + ")")
	require.True(s.t, len(text) >= 2 && text[0] == '\'' && text[len(text)-1] == '\'', text)
	var js strings.Builder
	for i := 1; i < len(text)-1; i++ {
		if text[i] == '\\' {
			i++
		}
		js.WriteByte(text[i])
	}
	var str string
	require.NoError(s.t, json.Unmarshal([]byte(js.String()), &str), text)
	return str
}

// names is the user namespace's names (dir()), sorted.
func (s *stateKernel) names() []string {
	return strings.Split(s.evalStr("'|'.join(sorted(dir()))"), "|")
}

// onlyStatus asserts that a silent call published nothing but busy and idle.
func onlyStatus(t testing.TB, c silentCall) {
	t.Helper()
	for _, typ := range c.iopub {
		require.Equal(t, "status", typ, "the notebook must not see the helper: %v", c.iopub)
	}
}

// byName indexes a report's variables.
func byName(vars []launcher.StateVar) map[string]launcher.StateVar {
	m := make(map[string]launcher.StateVar, len(vars))
	for _, v := range vars {
		m[v.Name] = v
	}
	return m
}
