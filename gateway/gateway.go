package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

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
	// Auth tells who a client is from its token. Nil: every client is the admin (no token).
	Auth Authenticator
	// Log receives the gateway's logs (never a key or token).
	Log *slog.Logger
	// Version is reported by GET /api.
	Version string
	// PingInterval is how often websockets are pinged; a client that answers nothing for
	// twice as long is dropped (default 30s).
	PingInterval time.Duration
	// Namespace and Name label the gateway's metrics (default "local", "gateway").
	Namespace, Name string
}

// Gateway is a Jupyter kernel gateway.
type Gateway struct {
	prov    Provisioner
	specs   SpecSource
	source  SettingsSource
	auth    Authenticator
	log     *slog.Logger
	version string
	ping    time.Duration
	metrics *metrics

	mu      sync.Mutex
	kernels map[string]*kernel
}

// New returns a gateway; call Serve (or Restore, then serve Handler and cull).
func New(opts Options) *Gateway {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	if opts.Auth == nil {
		opts.Auth = OpenAuth{}
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 30 * time.Second
	}
	if opts.Namespace == "" {
		opts.Namespace = "local"
	}
	if opts.Name == "" {
		opts.Name = "gateway"
	}
	return &Gateway{
		prov: opts.Provisioner, specs: opts.Specs, source: opts.Settings, auth: opts.Auth,
		log: opts.Log, version: opts.Version, ping: opts.PingInterval, kernels: map[string]*kernel{},
		metrics: newMetrics(opts.Namespace, opts.Name),
	}
}

func (g *Gateway) settings() Settings { return g.source.Settings().withDefaults() }

// Restore adds the kernels the provisioner already has to the table (after a restart):
// running ones reconnect, starting ones are waited for again, suspended and failed ones keep
// their state.
func (g *Gateway) Restore(ctx context.Context) error {
	insts, err := g.prov.Restore(ctx)
	if err != nil {
		return fmt.Errorf("restoring kernels: %w", err)
	}
	for _, inst := range insts {
		k := newKernel(g, inst, inst.Owner)
		switch {
		case inst.Failed != "":
			k.phase, k.reason = phaseDead, inst.Failed
		case inst.Suspended:
			k.phase = phaseSuspended
		case inst.Info == nil:
			k.phase, k.reason = phaseStarting, "starting the kernel"
		}
		g.mu.Lock()
		g.kernels[k.id] = k
		g.mu.Unlock()
		switch {
		case inst.Info != nil && inst.Failed == "" && !inst.Suspended:
			k.run(inst.Info)
			if !inst.LastActivity.IsZero() {
				k.mu.Lock()
				k.lastActivity = inst.LastActivity
				k.mu.Unlock()
			}
		case k.phase == phaseStarting:
			go k.bringUp(false, g.settings().LaunchTimeout)
		}
		g.log.Info("kernel restored", "kernel", k.id, "kernelspec", k.specName, "phase", k.phase.String(), "owner", k.owner.Name)
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

// get returns kernel id if who may see it: another user's kernel does not exist for them.
func (g *Gateway) get(id string, who Identity) (*kernel, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	k, ok := g.kernels[id]
	if !ok || !who.mayUse(k) {
		return nil, fmt.Errorf("kernel %s: %w", id, ErrNotFound)
	}
	return k, nil
}

// list returns the kernels who may see, by id.
func (g *Gateway) list(who Identity) []*kernel {
	g.mu.Lock()
	defer g.mu.Unlock()
	ks := make([]*kernel, 0, len(g.kernels))
	for _, k := range g.kernels {
		if who.mayUse(k) {
			ks = append(ks, k)
		}
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i].id < ks[j].id })
	return ks
}

// all returns every kernel.
func (g *Gateway) all() []*kernel { return g.list(Identity{Admin: true}) }

// start creates a kernel of the named kernelspec for a client and returns it at once, while
// it starts: the client's messages are held until it runs.
func (g *Gateway) start(ctx context.Context, who Identity, specName string, env map[string]string) (*kernel, error) {
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
	if err := who.mayStart(spec, env); err != nil {
		return nil, err
	}
	user := who.userFor(env)
	env = who.kernelEnv(env, g.log)
	id := jupyter.NewID()
	g.log.Info("starting kernel", "kernel", id, "kernelspec", spec.Name, "user", user, "identity", who.Name)
	req := StartRequest{ID: id, Spec: spec, Env: env, User: user, Owner: who, Timeout: timeout}
	if err := g.prov.Start(ctx, req); err != nil {
		var he *httpError
		if errors.As(err, &he) {
			return nil, err
		}
		return nil, fmt.Errorf("starting kernel %s (%s): %w", id, spec.Name, err)
	}
	k := newKernel(g, &Instance{ID: id, SpecName: spec.Name, InterruptMode: spec.InterruptMode}, who)
	k.phase, k.reason = phaseStarting, "starting the kernel"
	g.mu.Lock()
	g.kernels[id] = k
	g.mu.Unlock()
	g.report(k)
	go k.bringUp(false, timeout)
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
