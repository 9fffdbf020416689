package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
)

// Execution states the gateway reports.
const (
	stateStarting = "starting"
	stateIdle     = "idle"
	stateBusy     = "busy"
	stateDead     = "dead"
)

// kernel is one entry of the gateway's kernel table.
type kernel struct {
	id            string
	specName      string
	interruptMode string
	g             *Gateway

	mu           sync.Mutex
	info         *jupyter.ConnectionInfo // nil while suspended
	gen          uint64                  // bumped whenever info changes or the kernel restarts
	changed      chan struct{}           // closed (and replaced) when gen changes
	state        string
	lastActivity time.Time
	conns        int
	suspended    bool
	resuming     chan struct{} // non-nil while a resume runs; closed when it ends
	resumeErr    error
	removed      bool
	monitor      *kernelconn.Conn
	bridges      map[*bridge]struct{}
}

func newKernel(g *Gateway, inst *Instance) *kernel {
	k := &kernel{
		id: inst.ID, specName: inst.SpecName, interruptMode: inst.InterruptMode, g: g,
		changed: make(chan struct{}), state: stateIdle, lastActivity: time.Now(),
		bridges: map[*bridge]struct{}{},
	}
	if !inst.LastActivity.IsZero() {
		k.lastActivity = inst.LastActivity
	}
	if inst.Suspended {
		k.suspended = true
	} else {
		k.info = inst.Info
	}
	return k
}

// model is the kernel's REST representation.
func (k *kernel) model() kernelModel {
	k.mu.Lock()
	defer k.mu.Unlock()
	state := k.state
	if k.suspended && k.resuming == nil {
		// Jupyter Server accepts only its own states; "suspended" travels as an extra field.
		state = stateIdle
	}
	if k.resuming != nil {
		state = stateStarting
	}
	return kernelModel{
		ID: k.id, Name: k.specName, LastActivity: jupyter.FormatTime(k.lastActivity),
		ExecutionState: state, Connections: k.conns, Suspended: k.suspended,
	}
}

// touch records activity now.
func (k *kernel) touch() {
	k.mu.Lock()
	k.lastActivity = time.Now()
	k.mu.Unlock()
}

// observe updates activity and execution state from a message the kernel sent.
func (k *kernel) observe(m *jupyter.Message) {
	k.mu.Lock()
	k.lastActivity = time.Now()
	if st, ok := m.ExecutionState(); ok && !k.suspended {
		k.state = st
	}
	k.mu.Unlock()
}

// activity is the kernel's Activity, for reporting.
func (k *kernel) activity() Activity {
	k.mu.Lock()
	defer k.mu.Unlock()
	st := k.state
	if k.suspended {
		st = stateIdle
	}
	return Activity{LastActivity: k.lastActivity, ExecutionState: st, Connections: k.conns}
}

// current returns the kernel's connection info and generation, and the channel closed at the
// next change.
func (k *kernel) current() (*jupyter.ConnectionInfo, uint64, <-chan struct{}) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.info, k.gen, k.changed
}

// setInfo installs new connection info (after a start, restart or resume) and tells every
// websocket bridge and the monitor to follow it.
func (k *kernel) setInfo(info *jupyter.ConnectionInfo) {
	k.mu.Lock()
	k.info = info
	k.gen++
	close(k.changed)
	k.changed = make(chan struct{})
	k.state = stateIdle
	k.mu.Unlock()
	k.watch(info)
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
	if k.removed {
		k.mu.Unlock()
		_ = mon.Close()
		return
	}
	k.monitor = mon
	k.mu.Unlock()
	go func() {
		for m := range mon.Messages() {
			k.observe(m)
		}
	}()
}

// ensureRunning returns the kernel's connection info, resuming it first if it is suspended.
// Concurrent callers share one resume.
func (k *kernel) ensureRunning(ctx context.Context) (*jupyter.ConnectionInfo, error) {
	k.mu.Lock()
	if k.removed {
		k.mu.Unlock()
		return nil, fmt.Errorf("kernel %s: %w", k.id, ErrNotFound)
	}
	if !k.suspended && k.info != nil {
		info := k.info
		k.mu.Unlock()
		return info, nil
	}
	wait := k.resuming
	if wait == nil {
		wait = make(chan struct{})
		k.resuming = wait
		k.mu.Unlock()
		go k.resume(wait)
	} else {
		k.mu.Unlock()
	}
	select {
	case <-wait:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.resumeErr != nil {
		return nil, k.resumeErr
	}
	return k.info, nil
}

// resume brings a suspended kernel back; done is closed when it ends.
func (k *kernel) resume(done chan struct{}) {
	settings := k.g.settings()
	ctx, cancel := context.WithTimeout(context.Background(), settings.LaunchTimeout)
	defer cancel()
	k.g.log.Info("resuming kernel", "kernel", k.id)
	k.g.broadcastStatus(k, stateStarting)
	info, err := k.g.prov.Resume(ctx, k.id)
	k.mu.Lock()
	k.resumeErr = err
	if err == nil {
		k.suspended = false
	}
	k.resuming = nil
	k.mu.Unlock()
	if err != nil {
		k.g.log.Error("resuming kernel failed", "kernel", k.id, "err", err.Error())
		close(done)
		return
	}
	k.setInfo(info)
	k.touch()
	k.g.log.Info("kernel resumed", "kernel", k.id)
	close(done)
	k.g.report(k)
}

// suspend frees the kernel's pod or process; the kernel id, model and websockets stay.
func (k *kernel) suspend(ctx context.Context) error {
	k.mu.Lock()
	if k.suspended || k.resuming != nil || k.removed {
		k.mu.Unlock()
		return nil
	}
	k.suspended = true
	k.mu.Unlock()
	if err := k.g.prov.Suspend(ctx, k.id); err != nil {
		k.mu.Lock()
		k.suspended = false
		k.mu.Unlock()
		return err
	}
	k.mu.Lock()
	k.info = nil
	k.mu.Unlock()
	return nil
}

// remove takes the kernel out of service: closes its monitor and its websockets.
func (k *kernel) remove() {
	k.mu.Lock()
	if k.removed {
		k.mu.Unlock()
		return
	}
	k.removed = true
	mon := k.monitor
	bridges := make([]*bridge, 0, len(k.bridges))
	for b := range k.bridges {
		bridges = append(bridges, b)
	}
	close(k.changed)
	k.changed = make(chan struct{})
	k.mu.Unlock()
	if mon != nil {
		_ = mon.Close()
	}
	for _, b := range bridges {
		b.close()
	}
}

func (k *kernel) addBridge(b *bridge) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.removed {
		return errors.New("the kernel is gone")
	}
	k.bridges[b] = struct{}{}
	k.conns = len(k.bridges)
	return nil
}

func (k *kernel) dropBridge(b *bridge) {
	k.mu.Lock()
	delete(k.bridges, b)
	k.conns = len(k.bridges)
	k.mu.Unlock()
}

// isRemoved reports whether the kernel was shut down or culled with Delete.
func (k *kernel) isRemoved() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.removed
}
