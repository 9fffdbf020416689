package gateway

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
)

// Execution states the gateway reports.
const (
	stateStarting   = "starting"
	stateIdle       = "idle"
	stateBusy       = "busy"
	stateDead       = "dead"
	stateRestarting = "restarting"
	// StateBusy is the execution state of a kernel that runs a cell.
	StateBusy = stateBusy
	// StateIdle is the execution state of a kernel that waits for a cell.
	StateIdle = stateIdle
)

// phase is where a kernel is in its life, as the gateway sees it. Exactly one holds at a
// time; lifecycle.go moves kernels between them.
type phase int

const (
	// phaseStarting: the kernel was created and its process or pod is coming up; messages
	// from clients are held until it runs.
	phaseStarting phase = iota
	// phaseRunning: the kernel accepts connections at info.
	phaseRunning
	// phaseRestarting: the kernel restarts in place (same pod).
	phaseRestarting
	// phaseSuspending: culled with Suspend; its state is being saved and its pod freed.
	phaseSuspending
	// phaseSuspended: no process or pod; the next message resumes it.
	phaseSuspended
	// phaseResuming: a suspended kernel is coming back.
	phaseResuming
	// phaseDead: the kernel could not start (or resume) or it died; reason says why.
	phaseDead
	// phaseRemoved: shut down or culled with Delete; it is gone.
	phaseRemoved
)

func (p phase) String() string {
	return [...]string{"starting", "running", "restarting", "suspending", "suspended", "resuming", "dead", "removed"}[p]
}

// comingUp reports whether a kernel in phase p will run without anyone asking again.
func (p phase) comingUp() bool {
	return p == phaseStarting || p == phaseResuming || p == phaseRestarting
}

// kernel is one entry of the gateway's kernel table.
type kernel struct {
	id            string
	specName      string
	interruptMode string
	owner         Identity // who started it
	g             *Gateway

	// op serializes lifecycle operations (bringing the kernel up, suspending, restarting,
	// shutting down); cancelOp cancels the one under way (a start that waits for a GPU
	// when the kernel is shut down).
	op       sync.Mutex
	cancelMu sync.Mutex
	cancelOp context.CancelFunc

	mu           sync.Mutex
	phase        phase
	reason       string                  // while coming up: what it waits for; when dead: why
	info         *jupyter.ConnectionInfo // set while running
	gen          uint64                  // bumped whenever info changes
	changed      chan struct{}           // closed (and replaced) at every change of phase, reason or info
	state        string                  // the execution state the kernel last reported
	lastActivity time.Time
	bridges      map[*bridge]struct{}
	// orphans are the messages held for websockets that closed before the kernel ran, by
	// client session: a client that reconnects with its session (Jupyter Server and
	// JupyterLab do) gets them delivered; they are never delivered to anyone else.
	orphans    map[string][]*jupyter.Message
	monitor    *kernelconn.Conn
	kernelInfo json.RawMessage // the content of the kernel's last kernel_info_reply
	// Notes for the notebook, numbered so each bridge tells each one once.
	suspendNote string
	suspendSeq  uint64
	resumeNote  string
	resumeSeq   uint64
	// refusal says why the last resume was refused; refusalSeq numbers refusals.
	refusal    string
	refusalSeq uint64
	// freshResume makes the next resume drop the saved variables (a restart asked for a fresh
	// interpreter).
	freshResume bool
}

func newKernel(g *Gateway, inst *Instance, owner Identity) *kernel {
	k := &kernel{
		id: inst.ID, specName: inst.SpecName, interruptMode: inst.InterruptMode, owner: owner, g: g,
		changed: make(chan struct{}), state: stateIdle, lastActivity: time.Now(),
		bridges: map[*bridge]struct{}{},
	}
	if !inst.LastActivity.IsZero() {
		k.lastActivity = inst.LastActivity
	}
	return k
}

// notifyLocked wakes everyone waiting for a change; k.mu must be held.
func (k *kernel) notifyLocked() {
	close(k.changed)
	k.changed = make(chan struct{})
}

// kernelView is a consistent snapshot of a kernel's lifecycle fields.
type kernelView struct {
	phase   phase
	reason  string
	info    *jupyter.ConnectionInfo
	gen     uint64
	changed <-chan struct{}
}

func (k *kernel) view() kernelView {
	k.mu.Lock()
	defer k.mu.Unlock()
	return kernelView{phase: k.phase, reason: k.reason, info: k.info, gen: k.gen, changed: k.changed}
}

// model is the kernel's REST representation.
func (k *kernel) model() kernelModel {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := kernelModel{
		ID: k.id, Name: k.specName, LastActivity: jupyter.FormatTime(k.lastActivity),
		ExecutionState: k.executionStateLocked(), Connections: len(k.bridges),
		Suspended: k.phase == phaseSuspended || k.phase == phaseSuspending,
	}
	if k.phase.comingUp() || k.phase == phaseDead {
		m.Reason = k.reason
	}
	return m
}

// executionStateLocked is the execution state clients are told. Jupyter Server accepts only
// its own states: a suspended kernel is idle (with "suspended": true beside it).
func (k *kernel) executionStateLocked() string {
	switch k.phase {
	case phaseStarting, phaseResuming:
		return stateStarting
	case phaseRestarting:
		return stateRestarting
	case phaseDead:
		return stateDead
	case phaseSuspending, phaseSuspended, phaseRemoved:
		return stateIdle
	}
	return k.state
}

// touch records activity now.
func (k *kernel) touch() {
	k.mu.Lock()
	k.lastActivity = time.Now()
	k.mu.Unlock()
}

// observe updates activity and execution state from a message the kernel sent, and keeps
// its kernel_info_reply for when it is suspended. fromMonitor says the message came from the
// activity monitor's iopub socket rather than a websocket's.
//
// The execution state follows one iopub stream only: each socket gets the kernel's statuses
// in order, but two sockets' goroutines interleave them, so a websocket's late "busy" could
// land after the monitor's "idle" and leave an idle kernel busy (never culled, its GPU never
// given back). Websockets' statuses count only while no monitor is connected.
func (k *kernel) observe(m *jupyter.Message, fromMonitor bool) {
	k.mu.Lock()
	k.lastActivity = time.Now()
	// A kernel publishes "starting" once, as it starts; the gateway knows it runs by then.
	st, ok := m.ExecutionState()
	if ok && k.phase == phaseRunning && st != stateStarting && (fromMonitor || k.monitor == nil) {
		k.state = st
	}
	if m.Header.MsgType == "kernel_info_reply" {
		k.kernelInfo = append(json.RawMessage(nil), m.Content...)
	}
	k.mu.Unlock()
}

// cachedKernelInfo is the content of the kernel's last kernel_info_reply, or nil.
func (k *kernel) cachedKernelInfo() json.RawMessage {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.kernelInfo
}

// activity is the kernel's Activity, for reporting and culling.
func (k *kernel) activity() Activity {
	k.mu.Lock()
	defer k.mu.Unlock()
	return Activity{LastActivity: k.lastActivity, ExecutionState: k.executionStateLocked(), Connections: len(k.bridges)}
}

// currentPhase returns the kernel's phase.
func (k *kernel) currentPhase() phase {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.phase
}

// maxOrphans bounds the messages a kernel keeps for clients that may reconnect.
const maxOrphans = 1000

// addBridge adds a client's websocket. One session has one websocket: an older one of the same
// session is stale (the client reconnected) and is closed; what it held, and what closed
// websockets of the session held, passes to the new one, in order.
func (k *kernel) addBridge(b *bridge) bool {
	k.mu.Lock()
	if k.phase == phaseRemoved {
		k.mu.Unlock()
		return false
	}
	var stale []*bridge
	for o := range k.bridges {
		if o.session == b.session {
			stale = append(stale, o)
			delete(k.bridges, o)
		}
	}
	held := k.orphans[b.session]
	delete(k.orphans, b.session)
	k.bridges[b] = struct{}{}
	k.mu.Unlock()
	for _, o := range stale {
		held = append(held, o.takeHeld()...)
		o.close()
	}
	if len(held) > 0 {
		b.mu.Lock()
		b.held = append(held, b.held...)
		b.mu.Unlock()
		k.g.log.Debug("a reconnected websocket takes over held messages", "kernel", k.id, "session", b.session, "messages", len(held))
	}
	return true
}

// orphan keeps the messages a closed websocket held, for its session's next websocket.
func (k *kernel) orphan(session string, held []*jupyter.Message) {
	if len(held) == 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.phase == phaseRemoved {
		return
	}
	if k.orphans == nil {
		k.orphans = map[string][]*jupyter.Message{}
	}
	n := 0
	for _, msgs := range k.orphans {
		n += len(msgs)
	}
	if n+len(held) > maxOrphans {
		return
	}
	k.orphans[session] = append(k.orphans[session], held...)
}

func (k *kernel) dropBridge(b *bridge) {
	k.mu.Lock()
	delete(k.bridges, b)
	k.mu.Unlock()
}

func (k *kernel) bridgeList() []*bridge {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]*bridge, 0, len(k.bridges))
	for b := range k.bridges {
		out = append(out, b)
	}
	return out
}

// lastRefusal returns why the last resume was refused and its number.
func (k *kernel) lastRefusal() (string, uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.refusal, k.refusalSeq
}

// notes returns the suspend and resume notes and their numbers.
func (k *kernel) notes() (suspend string, suspendSeq uint64, resume string, resumeSeq uint64) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.suspendNote, k.suspendSeq, k.resumeNote, k.resumeSeq
}
