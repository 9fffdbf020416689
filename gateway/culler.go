package gateway

import (
	"context"
	"time"
)

// cullable says whether a kernel should be culled now, with Jupyter's rules: a dead kernel at
// once; otherwise one idle longer than the timeout, unless it is busy (and not cullBusy) or
// connected (and not cullConnected).
func cullable(a Activity, dead bool, s Settings, now time.Time) (bool, string) {
	if dead {
		return true, "dead"
	}
	if s.CullIdleTimeout <= 0 {
		return false, ""
	}
	idle := now.Sub(a.LastActivity)
	if idle <= s.CullIdleTimeout {
		return false, ""
	}
	if a.ExecutionState == stateBusy && !s.CullBusy {
		return false, ""
	}
	if a.Connections > 0 && !s.CullConnected {
		return false, ""
	}
	return true, "idle for " + idle.Round(time.Second).String()
}

// CullOnce culls the kernels that are cullable now, and reports every kernel's activity.
func (g *Gateway) CullOnce(ctx context.Context) {
	s := g.settings()
	now := time.Now()
	for _, k := range g.list() {
		k.mu.Lock()
		suspended, resuming := k.suspended, k.resuming != nil
		k.mu.Unlock()
		if suspended || resuming {
			continue
		}
		dead := !g.prov.Alive(ctx, k.id)
		if dead {
			k.mu.Lock()
			k.state = stateDead
			k.mu.Unlock()
		}
		a := k.activity()
		ok, why := cullable(a, dead, s, now)
		if !ok {
			g.report(k)
			continue
		}
		policy := s.CullPolicy
		if dead {
			policy = CullDelete
		}
		g.log.Info("culling kernel", "kernel", k.id, "reason", why, "policy", policy,
			"execution_state", a.ExecutionState, "connections", a.Connections)
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		var err error
		if policy == CullSuspend {
			err = k.suspend(cctx)
			g.report(k)
		} else {
			err = g.shutdown(cctx, k)
		}
		cancel()
		if err != nil {
			g.log.Error("culling kernel failed", "kernel", k.id, "err", err.Error())
		}
	}
}
