package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/process"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// kernelProcess is a fake-kernel process.
type kernelProcess struct {
	*process.Process
	stderr *testenv.SyncBuffer
}

// startProcess runs the binary with args, killing it when the test ends.
func startProcess(t *testing.T, bin string, args ...string) *kernelProcess {
	t.Helper()
	cmd := exec.Command(bin, args...)
	p := &kernelProcess{stderr: &testenv.SyncBuffer{}}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	var err error
	p.Process, err = process.StartCmd("fake-kernel", cmd)
	require.NoError(t, err)
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("fake-kernel output:\n%s", p.stderr.String())
		}
	})
	return p
}

// exitCode waits for the process to exit and returns its exit code.
func (p *kernelProcess) exitCode(t *testing.T) int {
	t.Helper()
	select {
	case <-p.Done():
	case <-testCtx(t).Done():
		t.Fatal("fake-kernel did not exit")
	}
	return p.ExitCode()
}

// writeConnectionFile writes info into dir and returns its path.
func writeConnectionFile(t *testing.T, dir string, info *jupyter.ConnectionInfo) string {
	t.Helper()
	data, err := info.Marshal()
	require.NoError(t, err)
	file := filepath.Join(dir, "kernel-"+strconv.Itoa(info.ShellPort)+".json")
	require.NoError(t, os.WriteFile(file, data, 0o600))
	return file
}

func goTool(t *testing.T) string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Skip("no go command to build fake-kernel with")
	}
	return p
}

func TestFakeKernelBinary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "fake-kernel")
	build := exec.Command(goTool(t), "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	t.Run("serves a client, is interrupted by SIGINT and exits 0 after shutdown", func(t *testing.T) {
		info := kerneltest.NewConnectionInfo(t)
		p := startProcess(t, bin, "-f", writeConnectionFile(t, dir, info))
		c, err := kernelconn.Dial(testCtx(t), info, kernelconn.Options{})
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.WaitIOPub(testCtx(t)))
		require.NoError(t, c.Heartbeat(testCtx(t), 5*time.Second))

		res, err := c.Execute(testCtx(t), "print(6*7)")
		require.NoError(t, err)
		assert.Equal(t, "42\n", res.Stdout)

		// An interrupt as the kernel launcher sends it (interrupt_mode signal), once the
		// sleep runs.
		sleep, err := c.NewMessage("execute_request", map[string]any{"code": "import time; time.sleep(600)", "silent": false})
		require.NoError(t, err)
		require.NoError(t, c.Send(jupyter.ChannelShell, sleep))
		var ename string
		for ename == "" {
			select {
			case m := <-c.Messages():
				if m.Parent().MsgID != sleep.Header.MsgID {
					continue
				}
				switch m.Header.MsgType {
				case "execute_input":
					require.NoError(t, syscall.Kill(p.Pid(), syscall.SIGINT))
				case "execute_reply":
					var r struct{ Status, Ename string }
					require.NoError(t, m.DecodeContent(&r))
					assert.Equal(t, "error", r.Status)
					ename = r.Ename
				}
			case <-testCtx(t).Done():
				t.Fatal("SIGINT did not end the sleep")
			}
		}
		assert.Equal(t, "KeyboardInterrupt", ename)

		req, err := c.NewMessage("shutdown_request", map[string]bool{"restart": false})
		require.NoError(t, err)
		reply, err := c.Request(testCtx(t), jupyter.ChannelControl, req)
		require.NoError(t, err)
		assert.Equal(t, "shutdown_reply", reply.Header.MsgType)
		assert.Equal(t, 0, p.exitCode(t))
	})

	t.Run("SIGTERM stops it with exit code 0", func(t *testing.T) {
		info := kerneltest.NewConnectionInfo(t)
		p := startProcess(t, bin, "-f", writeConnectionFile(t, dir, info))
		c, err := kernelconn.Dial(testCtx(t), info, kernelconn.Options{})
		require.NoError(t, err)
		defer c.Close()
		require.NoError(t, c.Heartbeat(testCtx(t), 5*time.Second))
		require.NoError(t, syscall.Kill(p.Pid(), syscall.SIGTERM))
		assert.Equal(t, 0, p.exitCode(t))
	})

	t.Run("a port in use fails with a clear message", func(t *testing.T) {
		info := kerneltest.NewConnectionInfo(t)
		l, err := net.Listen("tcp", net.JoinHostPort(info.IP, strconv.Itoa(info.HBPort)))
		require.NoError(t, err)
		defer l.Close()
		p := startProcess(t, bin, "-f", writeConnectionFile(t, dir, info))
		assert.Equal(t, 1, p.exitCode(t))
		assert.Contains(t, p.stderr.String(), "fake-kernel: binding the hb channel on tcp://127.0.0.1:"+strconv.Itoa(info.HBPort))
	})

	t.Run("bad arguments and files", func(t *testing.T) {
		p := startProcess(t, bin)
		assert.Equal(t, 2, p.exitCode(t))
		assert.Contains(t, p.stderr.String(), "usage: fake-kernel")

		p = startProcess(t, bin, "-f", filepath.Join(dir, "missing.json"))
		assert.Equal(t, 1, p.exitCode(t))
		assert.Contains(t, p.stderr.String(), "reading the connection file")

		bad := filepath.Join(dir, "bad.json")
		require.NoError(t, os.WriteFile(bad, []byte(`{"shell_port": 1}`), 0o600))
		p = startProcess(t, bin, "-f", bad)
		assert.Equal(t, 1, p.exitCode(t))
		assert.Contains(t, p.stderr.String(), "is not a TCP port")
	})
}

// TestRunWithoutABinary covers run's argument handling in-process.
func TestRunWithoutABinary(t *testing.T) {
	var out testenv.SyncBuffer
	assert.Equal(t, 2, run([]string{"-log-level", "loud", "-f", "x"}, &out))
	assert.Contains(t, out.String(), `invalid value "loud" for flag -log-level: use DEBUG, INFO, WARNING (or WARN) or ERROR`)
	assert.Equal(t, 2, run([]string{"-f", "x", "extra"}, &out))
	assert.Equal(t, 2, run([]string{"-nope"}, &out))
}
