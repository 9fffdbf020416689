package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
	"github.com/elastic-jupyter/elastic-jupyter/internal/cliflag"
	"github.com/elastic-jupyter/elastic-jupyter/internal/loglevel"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

func init() {
	register("gateway", "run the Jupyter kernel gateway", runGateway)
}

func runGateway(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	listen := fs.String("listen", ":8888", "address to serve the Jupyter kernel gateway API on")
	metricsAddr := fs.String("metrics-bind-address", "", "address to serve Prometheus metrics on, at /metrics (empty: none)")
	tokenFile := fs.String("auth-token-file", "", "file holding the token clients must send (empty: no token)")
	prov := fs.String("provisioner", "kubernetes", "where kernels run: kubernetes (a pod each, from the gateway's JupyterGateway) or local (processes)")
	logLevel := loglevel.Var(fs)
	name := fs.String("name", "", "kubernetes: the name of this gateway's JupyterGateway")
	namespace := fs.String("namespace", "", "kubernetes: its namespace (default: the pod's)")
	kubeconfig := fs.String("kubeconfig", "", "kubernetes: a kubeconfig file (default: in-cluster or $KUBECONFIG)")
	var kernelDirs cliflag.List[string]
	fs.Var(&kernelDirs, "kernelspec-dir", "local: a Jupyter kernels directory (repeatable; default: Jupyter's usual ones)")
	runtimeDir := fs.String("runtime-dir", "", "local: where connection files go (default: a private temporary directory)")
	cullIdle := fs.Duration("cull-idle-timeout", 0, "local: cull kernels idle longer than this (0: never)")
	cullInterval := fs.Duration("cull-interval", 300*time.Second, "local: how often to look for idle kernels")
	cullPolicy := fs.String("cull-policy", gateway.CullDelete, "local: Delete or Suspend")
	cullBusy := fs.Bool("cull-busy", false, "local: also cull busy kernels")
	cullConnected := fs.Bool("cull-connected", false, "local: also cull kernels with connected clients")
	var allowedEnv cliflag.List[string]
	fs.Var(&allowedEnv, "allowed-env", "local: a variable name beyond KERNEL_* clients may pass (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel.Level}))
	token := ""
	if *tokenFile != "" {
		data, err := os.ReadFile(*tokenFile)
		if err != nil {
			return fmt.Errorf("--auth-token-file: %w", err)
		}
		token = strings.TrimSpace(string(data))
		if token == "" {
			return fmt.Errorf("--auth-token-file %s is empty: write the token into it, or omit the flag to run without one", *tokenFile)
		}
	}
	opts := gateway.Options{Log: log, Version: version.Version}
	if token != "" {
		opts.Auth = gateway.TokenAuth{Token: token}
	}
	switch *prov {
	case "local":
		if *cullPolicy != gateway.CullDelete && *cullPolicy != gateway.CullSuspend {
			return fmt.Errorf("--cull-policy %q: use Delete or Suspend", *cullPolicy)
		}
		dir := *runtimeDir
		if dir == "" {
			var err error
			if dir, err = os.MkdirTemp("", "elastic-jupyter-gateway-"); err != nil {
				return fmt.Errorf("creating the runtime directory: %w", err)
			}
			defer os.RemoveAll(dir)
		}
		dirs := kernelDirs.Values
		if len(dirs) == 0 {
			dirs = gateway.DefaultKernelDirs()
		}
		lp := &gateway.LocalProvisioner{RuntimeDir: dir, Output: os.Stderr}
		defer lp.Close()
		opts.Provisioner = lp
		opts.Specs = &gateway.DirSpecSource{Dirs: dirs}
		opts.Settings = gateway.StaticSettings{
			CullIdleTimeout: *cullIdle, CullInterval: *cullInterval, CullPolicy: *cullPolicy,
			CullBusy: *cullBusy, CullConnected: *cullConnected, AllowedEnv: allowedEnv.Values,
		}
	case "kubernetes":
		k, err := kubernetesGateway(ctx, *name, *namespace, *kubeconfig, log)
		if err != nil {
			return err
		}
		opts.Provisioner, opts.Specs, opts.Settings = k.Provisioner, k.Specs, k.Settings
		opts.Namespace, opts.Name = k.Namespace, *name
		if token != "" {
			opts.Auth = k.Auth(token)
		}
	default:
		return fmt.Errorf("--provisioner %q: use kubernetes or local", *prov)
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", *listen, err)
	}
	g := gateway.New(opts)
	if *metricsAddr != "" {
		ml, err := net.Listen("tcp", *metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-bind-address %s: %w", *metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", g.MetricsHandler())
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ml) }()
		defer srv.Close()
	}
	return g.Serve(ctx, l)
}
