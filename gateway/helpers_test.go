package gateway_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
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
	// python3-slow takes a few seconds to listen, as a kernel whose pod waits for a GPU does.
	slow := filepath.Join(dir, "python3-slow")
	require.NoError(t, os.MkdirAll(slow, 0o755))
	data, _ := json.Marshal(map[string]any{
		"argv":         []string{"/bin/sh", "-c", `sleep 3; exec "$0" "$@"`, kerneltest.IPyKernelArgv[0], "-m", "ipykernel_launcher", "-f", "{connection_file}"},
		"display_name": "Slow Python", "language": "python",
	})
	require.NoError(t, os.WriteFile(filepath.Join(slow, "kernel.json"), data, 0o644))
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
	return startGatewayWith(t, token, nil, nil)
}

// startGatewayWith starts a gateway whose local provisioner setup and options change.
func startGatewayWith(t *testing.T, token string, setup func(*gateway.LocalProvisioner), options func(*gateway.Options)) *testGateway {
	t.Helper()
	settings := &mutableSettings{s: gateway.Settings{CullInterval: time.Hour}}
	prov := &gateway.LocalProvisioner{RuntimeDir: t.TempDir(), Env: kerneltest.Env(t.TempDir()), Output: jupytertest.LogWriter{T: t}}
	if setup != nil {
		setup(prov)
	}
	var auth gateway.Authenticator
	if token != "" {
		auth = gateway.TokenAuth{Token: token}
	}
	opts := gateway.Options{
		Provisioner: prov,
		Specs:       &gateway.DirSpecSource{Dirs: []string{kernelDir(t)}},
		Settings:    settings,
		Auth:        auth,
		Log:         slog.New(slog.NewTextHandler(jupytertest.LogWriter{T: t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Version:     "test",
	}
	if options != nil {
		options(&opts)
	}
	g := gateway.New(opts)
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
