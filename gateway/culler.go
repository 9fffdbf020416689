package gateway

import (
	"context"
	"time"
)

// Cullable says whether a kernel should be culled now, with Jupyter's rules: a dead kernel at
// once; otherwise one idle longer than the timeout, unless it is busy (and not cullBusy) or
// connected (and not cullConnected). The culler, and the simulation of a team's traces, decide
// with it.
func Cullable(a Activity, dead bool, s Settings, now time.Time) (bool, string) {
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
	if a.ExecutionState == StateBusy && !s.CullBusy {
		return false, ""
	}
	if a.Connections > 0 && !s.CullConnected {
		return false, ""
	}
	return true, "idle for " + idle.Round(time.Second).String()
}

// CullOnce culls the kernels that are cullable now, and reports every kernel's activity.
// Kernels that are coming up or suspended are left alone; dead ones (a start that failed, a
// kernel whose pod died) are removed at once.
func (g *Gateway) CullOnce(ctx context.Context) {
	s := g.settings()
	now := time.Now()
	for _, k := range g.all() {
		p := k.currentPhase()
		if p != phaseRunning && p != phaseDead {
			continue
		}
		dead := p == phaseDead
		if !dead && !g.prov.Alive(ctx, k.id) {
			k.die("the kernel's process or pod ended")
			dead = true
		}
		a := k.activity()
		ok, why := Cullable(a, dead, s, now)
		if !ok {
			g.report(k)
			continue
		}
		policy := s.CullPolicy
		reason := "idle"
		if dead {
			policy, reason = CullDelete, "dead"
		}
		g.metrics.culls.WithLabelValues(policy, reason).Inc()
		g.log.Info("culling kernel", "kernel", k.id, "reason", why, "policy", policy,
			"execution_state", a.ExecutionState, "connections", a.Connections)
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		var err error
		if policy == CullSuspend {
			err = k.suspend(cctx, now.Sub(a.LastActivity))
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
