package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// Options configure a Gateway.
type Options struct {
	// Provisioner runs the kernels.
	Provisioner Provisioner
	// Specs lists the kernelspecs.
	Specs SpecSource
	// Settings gives the live settings.
	Settings SettingsSource
	// Token, when not empty, is required from every client.
	Token string
	// Log receives the gateway's logs (never a key or token).
	Log *slog.Logger
	// Version is reported by GET /api.
	Version string
}

// Gateway is a Jupyter kernel gateway.
type Gateway struct {
	prov    Provisioner
	specs   SpecSource
	source  SettingsSource
	token   string
	log     *slog.Logger
	version string

	mu      sync.Mutex
	kernels map[string]*kernel
	starts  sync.WaitGroup
}

// New returns a gateway; call Run to restore kernels and cull, and serve Handler.
func New(opts Options) *Gateway {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	return &Gateway{
		prov: opts.Provisioner, specs: opts.Specs, source: opts.Settings, token: opts.Token,
		log: opts.Log, version: opts.Version, kernels: map[string]*kernel{},
	}
}

func (g *Gateway) settings() Settings { return g.source.Settings().withDefaults() }

// Restore adds the kernels the provisioner already runs to the table (after a restart).
func (g *Gateway) Restore(ctx context.Context) error {
	insts, err := g.prov.Restore(ctx)
	if err != nil {
		return fmt.Errorf("restoring kernels: %w", err)
	}
	for _, inst := range insts {
		k := newKernel(g, inst)
		g.mu.Lock()
		g.kernels[k.id] = k
		g.mu.Unlock()
		if inst.Info != nil {
			k.setInfo(inst.Info)
			if !inst.LastActivity.IsZero() {
				k.mu.Lock()
				k.lastActivity = inst.LastActivity
				k.mu.Unlock()
			}
		}
		g.log.Info("kernel restored", "kernel", k.id, "kernelspec", k.specName, "suspended", inst.Suspended)
	}
	return nil
}

// Close takes every kernel out of service without shutting the kernels down (they keep
// running for the next gateway).
func (g *Gateway) Close() {
	g.mu.Lock()
	ks := make([]*kernel, 0, len(g.kernels))
	for _, k := range g.kernels {
		ks = append(ks, k)
	}
	g.kernels = map[string]*kernel{}
	g.mu.Unlock()
	for _, k := range ks {
		k.remove()
	}
}

func (g *Gateway) get(id string) (*kernel, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k, ok := g.kernels[id]
	if !ok {
		return nil, fmt.Errorf("kernel %s: %w", id, ErrNotFound)
	}
	return k, nil
}

func (g *Gateway) list() []*kernel {
	g.mu.Lock()
	defer g.mu.Unlock()
	ks := make([]*kernel, 0, len(g.kernels))
	for _, k := range g.kernels {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].id < ks[j].id })
	return ks
}

// start starts a kernel of the named kernelspec for a client.
func (g *Gateway) start(ctx context.Context, specName string, env map[string]string) (*kernel, error) {
	s := g.settings()
	if err := validateEnv(env, s.AllowedEnv); err != nil {
		return nil, &httpError{code: 400, reason: "Bad Request", err: err}
	}
	timeout, err := launchTimeout(env, s.LaunchTimeout)
	if err != nil {
		return nil, &httpError{code: 400, reason: "Bad Request", err: err}
	}
	spec, err := findSpec(ctx, g.specs, specName)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, &httpError{code: 404, reason: "Not Found", err: fmt.Errorf("no such kernelspec %q: GET /api/kernelspecs lists the ones this gateway offers", specName)}
		}
		return nil, err
	}
	g.starts.Add(1)
	defer g.starts.Done()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	id := jupyter.NewID()
	g.log.Info("starting kernel", "kernel", id, "kernelspec", spec.Name, "user", env["KERNEL_USERNAME"])
	inst, err := g.prov.Start(ctx, StartRequest{ID: id, Spec: spec, Env: env, User: env["KERNEL_USERNAME"]})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, &httpError{code: 504, reason: "Gateway Timeout",
				err: fmt.Errorf("kernel %s (%s) did not start within %s: %w", id, spec.Name, timeout, err)}
		}
		return nil, fmt.Errorf("starting kernel %s (%s): %w", id, spec.Name, err)
	}
	if inst.SpecName == "" {
		inst.SpecName = spec.Name
	}
	if inst.InterruptMode == "" {
		inst.InterruptMode = spec.InterruptMode
	}
	k := newKernel(g, inst)
	g.mu.Lock()
	g.kernels[id] = k
	g.mu.Unlock()
	k.setInfo(inst.Info)
	g.log.Info("kernel started", "kernel", id, "kernelspec", spec.Name)
	g.report(k)
	return k, nil
}

// shutdown removes a kernel for good.
func (g *Gateway) shutdown(ctx context.Context, k *kernel) error {
	g.mu.Lock()
	delete(g.kernels, k.id)
	g.mu.Unlock()
	k.remove()
	if err := g.prov.Shutdown(ctx, k.id); err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("shutting kernel %s down: %w", k.id, err)
	}
	g.log.Info("kernel shut down", "kernel", k.id)
	return nil
}

// report passes a kernel's activity to the provisioner.
func (g *Gateway) report(k *kernel) {
	g.prov.Report(k.id, k.activity())
}

// broadcastStatus sends an iopub status message to every websocket of k (for example
// "starting" while a suspended kernel resumes).
func (g *Gateway) broadcastStatus(k *kernel, state string) {
	k.mu.Lock()
	bridges := make([]*bridge, 0, len(k.bridges))
	for b := range k.bridges {
		bridges = append(bridges, b)
	}
	k.mu.Unlock()
	for _, b := range bridges {
		b.sendStatus(state, nil)
	}
}
