package kernelconn_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
)

// connect starts a real ipykernel and connects to it with a live iopub.
func connect(t *testing.T) (*kerneltest.Kernel, *kernelconn.Conn) {
	t.Helper()
	k := kerneltest.StartIPyKernel(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := kernelconn.Dial(ctx, k.Info, kernelconn.Options{Username: "test"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.WaitIOPub(ctx))
	return k, c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestKernelInfo(t *testing.T) {
	_, c := connect(t)
	req, err := c.NewMessage("kernel_info_request", nil)
	require.NoError(t, err)
	reply, err := c.Request(ctx(t), jupyter.ChannelShell, req)
	require.NoError(t, err)
	assert.Equal(t, "kernel_info_reply", reply.Header.MsgType)
	var info struct {
		Status          string `json:"status"`
		ProtocolVersion string `json:"protocol_version"`
		LanguageInfo    struct {
			Name string `json:"name"`
		} `json:"language_info"`
	}
	require.NoError(t, reply.DecodeContent(&info))
	assert.Equal(t, "ok", info.Status)
	assert.Equal(t, "python", info.LanguageInfo.Name)
	assert.True(t, strings.HasPrefix(info.ProtocolVersion, "5."), info.ProtocolVersion)
}

func TestExecuteStreamsOutput(t *testing.T) {
	_, c := connect(t)
	res, err := c.Execute(ctx(t), "import sys\nprint(6*7)\nprint('oops', file=sys.stderr)\n21*2")
	require.NoError(t, err)
	assert.Equal(t, "ok", res.Status)
	assert.Equal(t, "42\n", res.Stdout)
	assert.Equal(t, "oops\n", res.Stderr)
	assert.Equal(t, []string{"42"}, res.Results)
}

func TestExecuteErrorReply(t *testing.T) {
	_, c := connect(t)
	res, err := c.Execute(ctx(t), "1/0")
	require.NoError(t, err)
	assert.Equal(t, "error", res.Status)
	assert.Equal(t, "ZeroDivisionError", res.EName)
}

func TestInputOverStdin(t *testing.T) {
	_, c := connect(t)
	res, err := c.Execute(ctx(t), "name = input('who? ')\nprint('hello', name)", "gpu")
	require.NoError(t, err)
	assert.Equal(t, "ok", res.Status)
	assert.Contains(t, res.Stdout, "hello gpu")
}

func TestInterruptRequestOnControl(t *testing.T) {
	_, c := connect(t)
	done := make(chan *kernelconn.ExecuteResult, 1)
	errs := make(chan error, 1)
	started := time.Now()
	// The execute and the interrupt share Messages, so drive the wire by hand.
	exec, err := c.NewMessage("execute_request", map[string]any{"code": "import time\nprint('sleeping', flush=True)\ntime.sleep(60)", "silent": false})
	require.NoError(t, err)
	require.NoError(t, c.Send(jupyter.ChannelShell, exec))
	go func() {
		res := &kernelconn.ExecuteResult{}
		for m := range c.Messages() {
			if m.Parent().MsgID == exec.Header.MsgID && m.Header.MsgType == "stream" {
				// User code runs: interrupt it.
				intr, err := c.NewMessage("interrupt_request", nil)
				if err != nil {
					errs <- err
					return
				}
				started = time.Now()
				if err := c.Send(jupyter.ChannelControl, intr); err != nil {
					errs <- err
					return
				}
			}
			if m.Parent().MsgID == exec.Header.MsgID && m.Header.MsgType == "error" {
				var e struct{ Ename string }
				_ = json.Unmarshal(m.Content, &e)
				res.EName = e.Ename
			}
			if m.Parent().MsgID == exec.Header.MsgID && m.Header.MsgType == "execute_reply" {
				done <- res
				return
			}
		}
	}()
	select {
	case res := <-done:
		assert.Equal(t, "KeyboardInterrupt", res.EName)
		assert.Less(t, time.Since(started), 10*time.Second, "interrupted, not finished")
	case err := <-errs:
		t.Fatal(err)
	case <-ctx(t).Done():
		t.Fatal("the interrupt did not end time.sleep(60)")
	}
}

func TestHeartbeatAndShutdown(t *testing.T) {
	k, c := connect(t)
	require.NoError(t, c.Heartbeat(ctx(t), 5*time.Second))

	req, err := c.NewMessage("shutdown_request", map[string]bool{"restart": false})
	require.NoError(t, err)
	reply, err := c.Request(ctx(t), jupyter.ChannelControl, req)
	require.NoError(t, err)
	assert.Equal(t, "shutdown_reply", reply.Header.MsgType)
	select {
	case <-k.Done():
	case <-ctx(t).Done():
		t.Fatal("the kernel did not exit after shutdown_request")
	}
	assert.Error(t, c.Heartbeat(ctx(t), time.Second), "no heartbeat from a dead kernel")
}

func TestRestartedKernelReconnects(t *testing.T) {
	k, c := connect(t)
	res, err := c.Execute(ctx(t), "x = 41")
	require.NoError(t, err)
	require.Equal(t, "ok", res.Status)

	// A restart: the kernel process goes, a new one binds the same ports.
	k.Kill()
	assert.Error(t, c.Heartbeat(ctx(t), time.Second))
	kerneltest.StartIPyKernel(t, k.Info)
	require.NoError(t, c.Reconnect(ctx(t)))
	require.NoError(t, c.WaitIOPub(ctx(t)))
	require.NoError(t, c.Heartbeat(ctx(t), 5*time.Second))

	res, err = c.Execute(ctx(t), "print('x' in dir())")
	require.NoError(t, err)
	assert.Equal(t, "False\n", res.Stdout, "the restarted kernel lost its variables")
}

func TestWronglySignedMessagesRefusedBothWays(t *testing.T) {
	k, good := connect(t)
	wrong := *k.Info
	wrong.Key = "not-the-key"
	errCh := make(chan error, 64)
	bad, err := kernelconn.Dial(ctx(t), &wrong, kernelconn.Options{OnError: func(_ string, err error) {
		select {
		case errCh <- err:
		default:
		}
	}})
	require.NoError(t, err)
	defer bad.Close()

	// The kernel ignores a request signed with the wrong key ...
	req, err := bad.NewMessage("kernel_info_request", nil)
	require.NoError(t, err)
	require.NoError(t, bad.Send(jupyter.ChannelShell, req))

	// ... and the wrong-key client refuses what the kernel publishes (signed with the real
	// key) while a correct client executes.
	require.Eventually(t, func() bool {
		res, err := good.Execute(ctx(t), "print('published')")
		require.NoError(t, err)
		require.Equal(t, "published\n", res.Stdout)
		select {
		case err := <-errCh:
			return errors.Is(err, jupyter.ErrBadSignature)
		default:
			return false
		}
	}, 30*time.Second, 100*time.Millisecond)
	for {
		select {
		case m := <-bad.Messages():
			t.Fatalf("a wrongly signed %s got through on %s", m.Header.MsgType, m.Channel)
		default:
			return
		}
	}
}

func BenchmarkExecuteZMQ(b *testing.B) {
	k := kerneltest.StartIPyKernel(b, nil)
	cctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := kernelconn.Dial(cctx, k.Info, kernelconn.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if err := c.WaitIOPub(cctx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := c.Execute(cctx, "1+1")
		if err != nil || res.Status != "ok" {
			b.Fatalf("execute: %v %v", err, res)
		}
	}
}
