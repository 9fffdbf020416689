package launcher

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// Config is what `kernel-launcher run` is told.
type Config struct {
	// ConnectionFile is the connection file from the kernel's Secret (read-only).
	ConnectionFile string
	// RuntimeDir is a private writable directory for the kernel's own copy of it.
	RuntimeDir string
	// IP is the address the kernel and the control port bind: the pod IP.
	IP string
	// ControlPort is the control server's port (0: DefaultControlPort; -1: no control server).
	ControlPort int
	// InterruptMode is "signal" or "message".
	InterruptMode string
	// StopGrace is how long a stopping kernel gets between SIGTERM and SIGKILL.
	StopGrace time.Duration
	// ReadyTimeout bounds how long a restart waits for the new kernel's ports.
	ReadyTimeout time.Duration
	// Argv is the kernel's argv; "{connection_file}" is replaced by the private copy's path.
	Argv []string
	// Log receives the launcher's logs (never the key).
	Log *slog.Logger
}

func (c *Config) defaults() error {
	if len(c.Argv) == 0 {
		return errors.New("no kernel argv: pass it after --")
	}
	if c.ConnectionFile == "" {
		return errors.New("--connection-file is required")
	}
	if c.RuntimeDir == "" {
		c.RuntimeDir = os.TempDir()
	}
	if c.IP == "" {
		c.IP = "0.0.0.0"
	}
	if c.ControlPort == 0 {
		c.ControlPort = DefaultControlPort
	}
	switch c.InterruptMode {
	case "":
		c.InterruptMode = InterruptSignal
	case InterruptSignal, InterruptMessage:
	default:
		return fmt.Errorf("--interrupt-mode %q: use %q or %q", c.InterruptMode, InterruptSignal, InterruptMessage)
	}
	if c.StopGrace <= 0 {
		c.StopGrace = 5 * time.Second
	}
	if c.ReadyTimeout <= 0 {
		c.ReadyTimeout = 60 * time.Second
	}
	if c.Log == nil {
		c.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return nil
}

// PrepareConnectionFile writes a private copy (mode 0600) of the connection file into dir with
// ip set, and returns its path and contents.
func PrepareConnectionFile(src, dir, ip string) (string, *jupyter.ConnectionInfo, error) {
	info, err := jupyter.ReadConnectionFile(src)
	if err != nil {
		return "", nil, err
	}
	info.IP = ip
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, fmt.Errorf("creating the runtime directory: %w", err)
	}
	data, err := info.Marshal()
	if err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp(dir, "kernel-*.json")
	if err != nil {
		return "", nil, fmt.Errorf("creating the private connection file: %w", err)
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return "", nil, err
	}
	if _, err := f.Write(data); err != nil {
		return "", nil, fmt.Errorf("writing the private connection file: %w", err)
	}
	return f.Name(), info, nil
}

// SubstituteArgv replaces {connection_file} in argv with path.
func SubstituteArgv(argv []string, path string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = strings.ReplaceAll(a, jupyter.ConnectionFilePlaceholder, path)
	}
	return out
}

// Run prepares the connection file, runs the kernel and the control server, and returns the
// status the launcher should exit with: the kernel's, or 0 after a shutdown.
func Run(ctx context.Context, cfg Config) (int, error) {
	if err := cfg.defaults(); err != nil {
		return 2, err
	}
	log := cfg.Log
	if home := os.Getenv("HOME"); home != "" {
		_ = os.MkdirAll(home, 0o700) // a kernel wants a writable HOME (IPython's profile)
	}
	path, info, err := PrepareConnectionFile(cfg.ConnectionFile, cfg.RuntimeDir, cfg.IP)
	if err != nil {
		return 2, err
	}
	defer os.Remove(path)
	k := newKernel(SubstituteArgv(cfg.Argv, path))
	if err := k.start(); err != nil {
		return 127, fmt.Errorf("%w; fix the kernelspec's command or image", err)
	}
	log.Info("kernel started", "argv0", filepath.Base(cfg.Argv[0]), "ip", cfg.IP,
		"shell_port", info.ShellPort, "control", cfg.ControlPort, "interrupt_mode", cfg.InterruptMode)

	ctl := &control{cfg: cfg, info: info, kernel: k, auth: newVerifier([]byte(info.Key)), log: log, shutdown: make(chan struct{})}
	var srv *http.Server
	if cfg.ControlPort > 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(cfg.IP, strconv.Itoa(cfg.ControlPort)))
		if err != nil {
			k.stop(cfg.StopGrace)
			return 2, fmt.Errorf("listening on the control port: %w", err)
		}
		srv = &http.Server{Handler: ctl.routes(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(l) }()
		defer srv.Close()
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for {
		select {
		case status := <-k.exited:
			log.Info("kernel exited", "status", status)
			return status, nil
		case <-ctl.shutdown:
			log.Info("kernel shut down")
			return 0, nil
		case s := <-sigs:
			switch s {
			case syscall.SIGINT:
				_ = k.signal(syscall.SIGINT)
			default:
				log.Info("stopping the kernel", "signal", s.String())
				k.stop(cfg.StopGrace)
				k.mu.Lock()
				status := k.status
				k.mu.Unlock()
				return status, nil
			}
		case <-ctx.Done():
			k.stop(cfg.StopGrace)
			return 0, nil
		}
	}
}

// control is the control server.
type control struct {
	cfg    Config
	info   *jupyter.ConnectionInfo
	kernel *kernel
	auth   *verifier
	log    *slog.Logger

	mu           sync.Mutex // one restart or shutdown at a time
	restarting   bool
	shutdown     chan struct{}
	shutdownOnce sync.Once
}

func (c *control) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { reply(w, http.StatusOK, "ok") })
	mux.HandleFunc("GET /readyz", c.readyz)
	mux.HandleFunc("POST /interrupt", c.authed(c.interrupt))
	mux.HandleFunc("POST /restart", c.authed(c.restart))
	mux.HandleFunc("POST /shutdown", c.authed(c.shutdownKernel))
	return mux
}

func (c *control) ready() bool {
	c.mu.Lock()
	restarting := c.restarting
	c.mu.Unlock()
	return !restarting && listening(c.cfg.IP, c.info.ShellPort, c.info.HBPort)
}

func (c *control) readyz(w http.ResponseWriter, _ *http.Request) {
	if c.ready() {
		reply(w, http.StatusOK, "ready")
		return
	}
	reply(w, http.StatusServiceUnavailable, "the kernel is not listening yet")
}

func (c *control) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := c.auth.verify(r); err != nil {
			c.log.Warn("refused a control request", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err.Error())
			reply(w, http.StatusUnauthorized, err.Error())
			return
		}
		h(w, r)
	}
}

func (c *control) interrupt(w http.ResponseWriter, _ *http.Request) {
	if c.cfg.InterruptMode == InterruptMessage {
		reply(w, http.StatusConflict, "the kernel's interrupt mode is message: send interrupt_request on the control channel")
		return
	}
	if err := c.kernel.signal(syscall.SIGINT); err != nil {
		reply(w, http.StatusConflict, err.Error())
		return
	}
	c.log.Info("kernel interrupted")
	reply(w, http.StatusOK, "interrupted")
}

func (c *control) restart(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	if c.restarting {
		c.mu.Unlock()
		reply(w, http.StatusConflict, "a restart is already under way")
		return
	}
	c.restarting = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.restarting = false
		c.mu.Unlock()
	}()
	c.kernel.stop(c.cfg.StopGrace)
	// The old process may have been reported as exiting on its own in a race; drop that.
	select {
	case <-c.kernel.exited:
	default:
	}
	if err := c.kernel.start(); err != nil {
		reply(w, http.StatusInternalServerError, err.Error())
		return
	}
	if err := wait.PollUntilContextTimeout(r.Context(), 50*time.Millisecond, c.cfg.ReadyTimeout, true, func(context.Context) (bool, error) {
		return listening(c.cfg.IP, c.info.ShellPort, c.info.HBPort), nil
	}); err != nil {
		reply(w, http.StatusGatewayTimeout, "the restarted kernel did not listen within "+c.cfg.ReadyTimeout.String())
		return
	}
	c.log.Info("kernel restarted")
	reply(w, http.StatusOK, "restarted")
}

func (c *control) shutdownKernel(w http.ResponseWriter, _ *http.Request) {
	c.kernel.stop(c.cfg.StopGrace)
	reply(w, http.StatusOK, "shut down")
	c.shutdownOnce.Do(func() { close(c.shutdown) })
}

func reply(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}
