package gateway

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
)

// The transitions of a kernel's life. A kernel is created starting and brought up in the
// background (bringUp), so POST /api/kernels answers at once and the notebook's first cell
// is held, not lost. Every transition happens under k.mu and wakes k.changed; long operations
// run under k.op, one at a time.

// errKernelGone is returned to waiters of a kernel that was shut down.
var errKernelGone = errors.New("the kernel was shut down")

// deadError is returned to waiters of a kernel that could not start or died.
type deadError struct{ reason string }

func (e *deadError) Error() string { return e.reason }

// setPhase moves k to p with reason and wakes its waiters; it refuses (false) to leave
// phaseRemoved.
func (k *kernel) setPhase(p phase, reason string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.phase == phaseRemoved {
		return false
	}
	k.phase, k.reason = p, reason
	if p != phaseRunning {
		k.info = nil
	}
	k.notifyLocked()
	return true
}

// setReason records what a kernel that comes up waits for; bridges tell their notebooks.
func (k *kernel) setReason(reason string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.phase.comingUp() && k.reason != reason {
		k.reason = reason
		k.notifyLocked()
	}
}

// run makes k running at info: bridges connect to it and deliver what they held.
func (k *kernel) run(info *jupyter.ConnectionInfo) bool {
	k.mu.Lock()
	if k.phase == phaseRemoved {
		k.mu.Unlock()
		return false
	}
	k.phase, k.reason, k.info, k.state = phaseRunning, "", info, stateIdle
	k.gen++
	k.lastActivity = time.Now()
	k.notifyLocked()
	k.mu.Unlock()
	k.watch(info)
	return true
}

// withOp runs f as the kernel's one lifecycle operation under way, cancellable by shutdown.
func (k *kernel) withOp(timeout time.Duration, f func(ctx context.Context)) {
	k.op.Lock()
	defer k.op.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	k.cancelMu.Lock()
	k.cancelOp = cancel
	k.cancelMu.Unlock()
	defer func() {
		k.cancelMu.Lock()
		k.cancelOp = nil
		k.cancelMu.Unlock()
	}()
	f(ctx)
}

// bringUp waits for a starting or resuming kernel to run (asking the provisioner to resume it
// first when resume is set), telling its notebooks what it waits for; a kernel that does not
// come up dies with the reason.
func (k *kernel) bringUp(resume bool, timeout time.Duration) {
	k.withOp(timeout, func(ctx context.Context) {
		if !k.currentPhase().comingUp() {
			return // shut down meanwhile
		}
		what := "starting"
		if resume {
			what = "resuming"
			if err := k.g.prov.Resume(ctx, k.id); err != nil {
				var refused *RefusedError
				if errors.As(err, &refused) {
					k.refuse(refused.Reason)
					return
				}
				k.die(fmt.Sprintf("the kernel could not be resumed: %v", err))
				return
			}
		}
		k.g.log.Info(what+" kernel", "kernel", k.id, "kernelspec", k.specName)
		start := time.Now()
		info, err := k.g.prov.Wait(ctx, k.id, k.setReason)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("the kernel did not start within %s: %s", timeout.Round(time.Second), k.view().reason)
			}
			k.die(err.Error())
			return
		}
		if resume {
			k.restoreState(ctx, info)
		}
		if k.run(info) {
			k.g.metrics.observeUp(resume, time.Since(start))
			k.g.log.Info("kernel running", "kernel", k.id, "after", time.Since(start).Round(time.Millisecond).String())
			k.g.report(k)
		}
	})
}

// refuse puts a kernel whose resume was refused back to suspended: the requests that would
// have resumed it get the reason, and the next one tries again.
func (k *kernel) refuse(reason string) {
	k.g.log.Info("resuming the kernel was refused", "kernel", k.id, "reason", reason)
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.phase != phaseResuming {
		return
	}
	k.phase, k.reason = phaseSuspended, ""
	k.refusal = "the kernel could not be resumed: " + reason
	k.refusalSeq++
	k.notifyLocked()
}

// die records that k cannot run, unless it was shut down meanwhile.
func (k *kernel) die(reason string) {
	k.mu.Lock()
	removed := k.phase == phaseRemoved
	k.mu.Unlock()
	if removed {
		return
	}
	k.g.log.Warn("kernel failed", "kernel", k.id, "reason", reason)
	k.setPhase(phaseDead, reason)
	k.g.report(k)
}

// wake resumes a suspended kernel (or retries a dead one when retry is set); it returns at
// once, and the kernel's waiters learn when it runs.
func (k *kernel) wake(retry bool) {
	k.mu.Lock()
	ok := k.phase == phaseSuspended || retry && k.phase == phaseDead
	if ok {
		k.phase, k.reason, k.resumeNote = phaseResuming, "resuming the kernel", ""
		k.notifyLocked()
	}
	k.mu.Unlock()
	if ok {
		go k.bringUp(true, k.g.settings().LaunchTimeout)
	}
}

// awaitRunning returns the connection info of k once it runs, resuming it if it is
// suspended. It fails when k is dead or removed, or ctx ends.
func (k *kernel) awaitRunning(ctx context.Context) (*jupyter.ConnectionInfo, uint64, error) {
	for {
		v := k.view()
		switch v.phase {
		case phaseRunning:
			return v.info, v.gen, nil
		case phaseSuspended:
			k.wake(false)
		case phaseDead:
			return nil, 0, &deadError{reason: v.reason}
		case phaseRemoved:
			return nil, 0, errKernelGone
		}
		select {
		case <-v.changed:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// suspend frees the kernel's pod or process: its state is saved first (where its kernelspec
// has a state volume), and the kernel id, model and websockets stay. idle says how long the
// kernel was idle, for the note the notebook gets.
func (k *kernel) suspend(ctx context.Context, idle time.Duration) error {
	k.op.Lock()
	defer k.op.Unlock()
	k.mu.Lock()
	if k.phase != phaseRunning {
		k.mu.Unlock()
		return nil
	}
	info := k.info
	k.phase, k.reason = phaseSuspending, ""
	k.notifyLocked()
	k.mu.Unlock()
	freed := "its resources were given back"
	switch n := k.g.prov.GPUs(ctx, k.id); {
	case n == 1:
		freed = "the GPU was given back"
	case n > 1:
		freed = fmt.Sprintf("its %d GPUs were given back", n)
	}
	kept := k.saveState(ctx, info)
	if err := k.g.prov.Suspend(ctx, k.id); err != nil {
		k.run(info)
		return fmt.Errorf("suspending kernel %s: %w", k.id, err)
	}
	k.mu.Lock()
	if k.phase == phaseSuspending {
		k.phase, k.info = phaseSuspended, nil
		k.suspendNote = fmt.Sprintf("idle %s: %s; your next cell brings the kernel back %s", humanDuration(idle), freed, kept)
		k.suspendSeq++
		k.notifyLocked()
	}
	k.mu.Unlock()
	k.closeMonitor()
	k.g.log.Info("kernel suspended", "kernel", k.id, "idle", idle.Round(time.Second).String())
	return nil
}

// restart restarts a running kernel in place; a suspended one comes back fresh, and a dead
// one is started again.
func (k *kernel) restart(ctx context.Context) error {
	switch k.currentPhase() {
	case phaseSuspended:
		k.mu.Lock()
		k.freshResume = true
		k.mu.Unlock()
		k.wake(false)
		_, _, err := k.awaitRunning(ctx)
		return err
	case phaseDead:
		k.wake(true)
		_, _, err := k.awaitRunning(ctx)
		return err
	case phaseStarting, phaseResuming, phaseRestarting, phaseSuspending:
		return &httpError{code: 409, reason: "Conflict", err: fmt.Errorf("kernel %s is %s: restart it once it runs", k.id, k.currentPhase())}
	case phaseRemoved:
		return fmt.Errorf("kernel %s: %w", k.id, ErrNotFound)
	}
	k.op.Lock()
	defer k.op.Unlock()
	if !k.setPhaseFrom(phaseRunning, phaseRestarting, "restarting the kernel") {
		return &httpError{code: 409, reason: "Conflict", err: fmt.Errorf("kernel %s is %s: restart it once it runs", k.id, k.currentPhase())}
	}
	k.g.log.Info("restarting kernel", "kernel", k.id)
	info, err := k.g.prov.Restart(ctx, k.id)
	if err != nil {
		k.die(fmt.Sprintf("the kernel did not restart: %v", err))
		return fmt.Errorf("restarting kernel %s: %w", k.id, err)
	}
	k.run(info)
	return nil
}

// setPhaseFrom moves k from phase from to to; false when k is in another phase.
func (k *kernel) setPhaseFrom(from, to phase, reason string) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.phase != from {
		return false
	}
	k.phase, k.reason = to, reason
	k.info = nil
	k.notifyLocked()
	return true
}

// remove takes the kernel out of service for good: waiters fail, the operation under way is
// cancelled, websockets and the activity monitor close.
func (k *kernel) remove() {
	if !k.setPhase(phaseRemoved, "") {
		return
	}
	k.cancelMu.Lock()
	if k.cancelOp != nil {
		k.cancelOp()
	}
	k.cancelMu.Unlock()
	k.closeMonitor()
	for _, b := range k.bridgeList() {
		b.close()
	}
}

// watch (re)connects the activity monitor: an iopub-only connection that sees every message
// the kernel publishes, whether or not a client is connected.
func (k *kernel) watch(info *jupyter.ConnectionInfo) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k.mu.Lock()
	mon := k.monitor
	k.mu.Unlock()
	if mon != nil {
		if err := mon.Retarget(ctx, info); err != nil {
			k.g.log.Warn("reconnecting the activity monitor", "kernel", k.id, "err", err.Error())
		}
		return
	}
	mon, err := kernelconn.Dial(ctx, info, kernelconn.Options{IOPubOnly: true, Buffer: 256})
	if err != nil {
		k.g.log.Warn("connecting the activity monitor", "kernel", k.id, "err", err.Error())
		return
	}
	k.mu.Lock()
	if k.phase == phaseRemoved || k.monitor != nil {
		k.mu.Unlock()
		_ = mon.Close()
		return
	}
	k.monitor = mon
	k.mu.Unlock()
	go func() {
		for m := range mon.Messages() {
			k.observe(m, true)
		}
	}()
}

func (k *kernel) closeMonitor() {
	k.mu.Lock()
	mon := k.monitor
	k.monitor = nil
	k.mu.Unlock()
	if mon != nil {
		_ = mon.Close()
	}
}

// humanDuration writes d as people say it: "15 min", "2 h 5 min", "40 s".
func humanDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	h := int(d.Hours())
	if m := int(d.Minutes()) % 60; m > 0 {
		return fmt.Sprintf("%d h %d min", h, m)
	}
	return fmt.Sprintf("%d h", h)
}
