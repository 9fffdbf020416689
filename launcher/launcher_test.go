package launcher_test

import (
	"bytes"
	"context"
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

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/process"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

var (
	binary string
	// helper is the kernel-state helper as the init container installs it (the launcher's
	// "install" into opt/bin puts it at opt/lib).
	helper string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kernel-launcher-test-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "kernel-launcher")
	build := exec.Command("go", "build", "-o", binary, "../cmd/kernel-launcher")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		panic("building kernel-launcher: " + err.Error() + "\n" + string(out))
	}
	if out, err := exec.Command(binary, "install", filepath.Join(dir, "opt", "bin")).CombinedOutput(); err != nil {
		panic("installing kernel-launcher: " + err.Error() + "\n" + string(out))
	}
	helper = filepath.Join(dir, "opt", filepath.FromSlash(launcher.StateHelperFile))
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is a goroutine-safe output buffer.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// started is a launcher running a real ipykernel.
type started struct {
	info    *jupyter.ConnectionInfo
	secret  string
	runtime string
	port    int
	proc    *process.Process
	out     *syncBuffer
	client  *launcher.Client
}

// startLauncher runs the launcher binary as a pod would: the connection file has no ip, the
// launcher binds ip.
func startLauncher(t *testing.T, ip string, extra []string, argv ...string) *started {
	t.Helper()
	info := kerneltest.NewConnectionInfo(t)
	ports, err := kerneltest.FreePorts(ip, 1)
	require.NoError(t, err)
	info.IP = ""
	dir := t.TempDir()
	secret := filepath.Join(dir, "connection.json")
	data, err := info.Marshal()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(secret, data, 0o400))
	runtime := filepath.Join(dir, "run")
	if len(argv) == 0 {
		argv = kerneltest.IPyKernelArgv
	}
	args := append([]string{"run", "--connection-file", secret, "--runtime-dir", runtime,
		"--ip", ip, "--control-port", strconv.Itoa(ports[0])}, extra...)
	args = append(append(args, "--"), argv...)
	cmd := exec.Command(binary, args...)
	cmd.Env = kerneltest.Env(filepath.Join(dir, "home"))
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	p, err := process.StartCmd("kernel-launcher", cmd)
	require.NoError(t, err)
	s := &started{info: info, secret: secret, runtime: runtime, port: ports[0], proc: p, out: out,
		client: launcher.NewClient(ip, ports[0], info.Key)}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("launcher output:\n%s", out.String())
		}
	})
	s.info.IP = ip
	return s
}

func (s *started) waitReady(t *testing.T) {
	t.Helper()
	require.Eventually(t, func() bool { return s.client.Ready(context.Background()) }, 60*time.Second, 50*time.Millisecond,
		"the launcher reports the kernel ready")
}

func (s *started) connect(t *testing.T) *kernelconn.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := kernelconn.Dial(ctx, s.info, kernelconn.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.WaitIOPub(ctx))
	return c
}

func timeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLauncherRunsTheKernelOnThePodIP(t *testing.T) {
	s := startLauncher(t, "127.0.0.9", nil)
	s.waitReady(t)
	c := s.connect(t)
	res, err := c.Execute(timeout(t), "print(6*7)")
	require.NoError(t, err)
	assert.Equal(t, "42\n", res.Stdout)

	// The kernel reads a private copy with the pod IP; the Secret's file is untouched.
	files, err := filepath.Glob(filepath.Join(s.runtime, "kernel-*.json"))
	require.NoError(t, err)
	require.Len(t, files, 1)
	st, err := os.Stat(files[0])
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	copyInfo, err := jupyter.ReadConnectionFile(files[0])
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.9", copyInfo.IP)
	orig, err := jupyter.ReadConnectionFile(s.secret)
	require.NoError(t, err)
	assert.Empty(t, orig.IP)

	assert.NotContains(t, s.out.String(), s.info.Key, "the key is never logged")
}

func TestInterruptThroughTheLauncher(t *testing.T) {
	s := startLauncher(t, "127.0.0.10", nil)
	s.waitReady(t)
	c := s.connect(t)
	req, err := c.NewMessage("execute_request", map[string]any{"code": "import time\nprint('sleeping', flush=True)\ntime.sleep(60)", "silent": false})
	require.NoError(t, err)
	require.NoError(t, c.Send(jupyter.ChannelShell, req))
	var interruptedAt time.Time
	ename := ""
	ctx := timeout(t)
	for {
		var m *jupyter.Message
		select {
		case m = <-c.Messages():
		case <-ctx.Done():
			t.Fatal("no KeyboardInterrupt")
		}
		if m.Parent().MsgID != req.Header.MsgID {
			continue
		}
		switch m.Header.MsgType {
		case "stream":
			// The cell runs user code now (SIGINT before that may hit ipykernel itself).
			interruptedAt = time.Now()
			require.NoError(t, s.client.Interrupt(ctx))
		case "error":
			var e struct{ Ename string }
			require.NoError(t, m.DecodeContent(&e))
			ename = e.Ename
		}
		if m.Header.MsgType == "execute_reply" {
			break
		}
	}
	elapsed := time.Since(interruptedAt)
	assert.Equal(t, "KeyboardInterrupt", ename)
	assert.Less(t, elapsed, 30*time.Second, "interrupted, not slept out")
	t.Logf("KeyboardInterrupt %s after the interrupt", elapsed)
}

func TestRestartKeepsPortsAndLosesState(t *testing.T) {
	s := startLauncher(t, "127.0.0.11", nil)
	s.waitReady(t)
	c := s.connect(t)
	res, err := c.Execute(timeout(t), "x = 42\nimport os\nprint(os.getpid())")
	require.NoError(t, err)
	pid := strings.TrimSpace(res.Stdout)

	require.NoError(t, s.client.Restart(timeout(t)))
	require.NoError(t, c.Reconnect(timeout(t)))
	require.NoError(t, c.WaitIOPub(timeout(t)))
	res, err = c.Execute(timeout(t), "print('x' in dir(), os.getpid() if 'os' in dir() else __import__('os').getpid())")
	require.NoError(t, err)
	fields := strings.Fields(res.Stdout)
	require.Len(t, fields, 2, res.Stdout)
	assert.Equal(t, "False", fields[0], "the variable is gone after the restart")
	assert.NotEqual(t, pid, fields[1], "a new kernel process")
	select {
	case <-s.proc.Done():
		t.Fatal("the launcher exited during the restart")
	default:
	}
}

func TestShutdownEndsTheLauncherCleanly(t *testing.T) {
	s := startLauncher(t, "127.0.0.12", nil)
	s.waitReady(t)
	require.NoError(t, s.client.Shutdown(timeout(t)))
	select {
	case <-s.proc.Done():
		assert.Equal(t, 0, s.proc.ExitCode())
	case <-timeout(t).Done():
		t.Fatal("the launcher did not exit after shutdown")
	}
}

func TestSIGTERMStopsKernelAndLauncher(t *testing.T) {
	s := startLauncher(t, "127.0.0.13", nil)
	s.waitReady(t)
	require.NoError(t, syscall.Kill(s.proc.Pid(), syscall.SIGTERM))
	select {
	case <-s.proc.Done():
	case <-timeout(t).Done():
		t.Fatal("the launcher did not exit on SIGTERM")
	}
	assert.False(t, s.client.Ready(context.Background()))
	assert.Eventually(t, func() bool {
		return !kernelListening(s.info)
	}, 10*time.Second, 50*time.Millisecond, "the kernel stopped with the launcher")
}

func kernelListening(info *jupyter.ConnectionInfo) bool {
	ep, _ := info.Endpoint(jupyter.ChannelShell)
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(ep, "tcp://"), time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func TestKernelExitStatusIsTheLaunchers(t *testing.T) {
	s := startLauncher(t, "127.0.0.14", nil, "/bin/sh", "-c", "test -f {connection_file} && exit 3")
	select {
	case <-s.proc.Done():
		assert.Equal(t, 3, s.proc.ExitCode())
	case <-timeout(t).Done():
		t.Fatal("the launcher did not exit with the kernel")
	}
}

func TestControlRequestsMustBeSigned(t *testing.T) {
	s := startLauncher(t, "127.0.0.15", nil)
	s.waitReady(t)
	url := "http://127.0.0.15:" + strconv.Itoa(s.port)
	for _, path := range []string{"/interrupt", "/restart", "/shutdown"} {
		resp, err := http.Post(url+path, "application/json", nil)
		require.NoError(t, err)
		_ = resp.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, path)
	}
	wrong := launcher.NewClient("127.0.0.15", s.port, "not-the-key")
	err := wrong.Shutdown(timeout(t))
	var lerr *launcher.Error
	require.ErrorAs(t, err, &lerr)
	assert.Equal(t, http.StatusUnauthorized, lerr.Status)
	assert.True(t, s.client.Ready(timeout(t)), "the kernel still runs")
}

func TestMessageModeRefusesSignalInterrupts(t *testing.T) {
	s := startLauncher(t, "127.0.0.16", []string{"--interrupt-mode", "message"})
	s.waitReady(t)
	err := s.client.Interrupt(timeout(t))
	var lerr *launcher.Error
	require.ErrorAs(t, err, &lerr)
	assert.Equal(t, http.StatusConflict, lerr.Status)
	assert.Contains(t, lerr.Message, "interrupt_request")
}

func TestBadFlagsAreExplained(t *testing.T) {
	out, err := exec.Command(binary, "run", "--connection-file", "/nonexistent", "--", "true").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "reading the connection file")
	out, err = exec.Command(binary, "run", "--connection-file", "/x", "--interrupt-mode", "poke", "--", "true").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "--interrupt-mode")
}

func TestInstallCopiesTheBinary(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command(binary, "install", filepath.Join(dir, "bin")).CombinedOutput()
	require.NoError(t, err, string(out))
	st, err := os.Stat(filepath.Join(dir, "bin", "kernel-launcher"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	out, err = exec.Command(filepath.Join(dir, "bin", "kernel-launcher"), "help").CombinedOutput()
	require.NoError(t, err)
	assert.Contains(t, string(out), "kernel-launcher run")
}
