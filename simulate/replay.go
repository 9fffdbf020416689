package simulate

import (
	"container/heap"
	"errors"
	"fmt"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
)

// DefaultResume is how long a kernel takes from getting its GPUs to running a cell when nothing
// says otherwise: its pod starts and, after a suspend, its variables come back.
const DefaultResume = 5 * time.Second

// epoch is the wall-clock time of tick 0, for the culler's rule (which reads times, not ticks).
var epoch = time.Date(2021, time.June, 1, 0, 0, 0, 0, time.UTC)

// Config is one run of the simulation.
type Config struct {
	// Settings are the gateway's: CullIdleTimeout (0: never cull), CullInterval, CullConnected
	// and CullPolicy, with the gateway's defaults filled in (Settings.WithDefaults). CullBusy
	// is not simulated: culling a cell while it runs would lose it.
	Settings gateway.Settings
	// GPUs is the cluster's GPU count; 0 means as many as the kernels ask for (nobody waits).
	GPUs int
	// Resume is how long a kernel takes from getting its GPUs to running (a start, a resume
	// after Suspend, or a fresh start after Delete).
	Resume time.Duration
}

// Result is what a run did. GPU-time is GPUs × time: one GPU held for an hour is an hour.
type Result struct {
	// Bound is the GPU-time with each session's GPUs bound to its kernel from the session's
	// start to its stop (the trace's times, nobody waiting).
	Bound time.Duration
	// Held is the GPU-time the kernels held their GPUs in this run (from getting them, starting
	// included, to being culled or closed).
	Held time.Duration
	// Busy is the GPU-time of kernels running a cell: what no idle threshold can give back.
	Busy time.Duration
	// Waits are how long each kernel that needs GPUs waited for them at a start, a resume or a
	// fresh start, in the order they were served.
	Waits []time.Duration
	// Starts, Resumes and Restarts count the kernels that got their GPUs: when their session
	// opened, when a cell came for a suspended kernel, and when one came after a Delete (the
	// kernel's variables are gone).
	Starts, Resumes, Restarts int
	// Culls counts the kernels the culler suspended or deleted.
	Culls int
	// End is when the last session closed.
	End time.Duration
}

// Saved is the GPU-time given back against GPUs bound per notebook.
func (r Result) Saved() time.Duration { return r.Bound - r.Held }

// Run replays a trace: each session opens a kernel, which is busy during the session's trainings
// and idle otherwise, and whose notebook stays connected until the session closes. Every
// cullInterval the culler asks gateway.Cullable of each running kernel; a culled kernel gives
// its GPUs back and is suspended (the next cell resumes it) or deleted (the next cell starts a
// fresh one). Kernels that need GPUs get them first come, first served.
func Run(t *Trace, c Config) (Result, error) {
	s := c.Settings.WithDefaults()
	if s.CullPolicy != gateway.CullSuspend && s.CullPolicy != gateway.CullDelete {
		return Result{}, fmt.Errorf("cull policy %q: use %s or %s", s.CullPolicy, gateway.CullSuspend, gateway.CullDelete)
	}
	if s.CullBusy {
		return Result{}, errors.New("cullBusy is not simulated (culling a kernel that runs a cell loses the cell): leave it false")
	}
	if c.GPUs < 0 {
		return Result{}, fmt.Errorf("the cluster's GPUs: %d is negative: give 0 (as many as asked for) or more", c.GPUs)
	}
	if c.Resume < 0 {
		return Result{}, fmt.Errorf("resume time %v is negative: give 0 or more", c.Resume)
	}
	if err := fits(t, c.Resume); err != nil {
		return Result{}, err
	}
	r := &run{trace: t, settings: s, resume: c.Resume, pool: pool{total: c.GPUs}}
	for i := range t.Sessions {
		ses := &t.Sessions[i]
		if c.GPUs > 0 && ses.GPUs > c.GPUs {
			return Result{}, fmt.Errorf("session %q needs %d GPUs at once, more than the cluster's %d: give the cluster at least %d", ses.ID, ses.GPUs, c.GPUs, ses.GPUs)
		}
		k := &kernel{s: ses, gpus: ses.GPUs}
		r.kernels = append(r.kernels, k)
		r.res.Bound += time.Duration(ses.GPUs) * (t.at(ses.StopTick) - t.at(ses.StartTick))
		r.push(t.at(ses.StartTick), evOpen, k)
	}
	r.open = len(r.kernels)
	r.push(s.CullInterval, evCull, nil)
	for r.events.Len() > 0 {
		e := heap.Pop(&r.events).(event)
		r.now = e.at
		r.handle(e)
		r.serve()
	}
	return r.res, nil
}

// fits checks that the run's GPU-time counts in int64 nanoseconds (about 292 GPU-years). No
// kernel holds GPUs after the last session's stop plus every cell's run and every kernel's
// coming up (after that stop some kernel is always running a cell or coming up), so the
// sessions' GPUs times that bound every sum.
func fits(t *Trace, resume time.Duration) error {
	if t.Tick <= 0 {
		return fmt.Errorf("tick %v: a tick lasts a positive time", t.Tick)
	}
	var gpus, last, cells, ups float64
	for _, s := range t.Sessions {
		gpus += float64(s.GPUs)
		last = max(last, float64(s.StopTick))
		ups += float64(1 + len(s.Trainings))
		for _, x := range s.Trainings {
			cells += float64(x.DurationTicks)
		}
	}
	if end := (last+cells)*float64(t.Tick) + ups*float64(resume); gpus*end >= 1<<62 {
		return fmt.Errorf("the trace is beyond what the simulation counts (%.0f GPUs for up to %v): shorten it, its ticks or --resume", gpus, time.Duration(min(end, 1<<62)))
	}
	return nil
}

// Events at one instant are handled in this order: a cell that ends makes its kernel idle
// before anything looks at it, a notebook that closes frees its GPUs before others are served,
// and a cell that comes makes its kernel busy before the culler looks.
type evKind int

const (
	evEnd     evKind = iota // a cell ends
	evStop                  // the session's stop tick: its notebook closes once its cells have run
	evReady                 // a kernel that got its GPUs is up
	evOpen                  // a session opens: its notebook starts a kernel
	evRequest               // the session's next cell comes
	evCull                  // the culler looks
)

type event struct {
	at   time.Duration
	kind evKind
	seq  int
	k    *kernel
}

type events []event

func (q events) Len() int { return len(q) }
func (q events) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	if q[i].kind != q[j].kind {
		return q[i].kind < q[j].kind
	}
	return q[i].seq < q[j].seq
}
func (q events) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *events) Push(x any)   { *q = append(*q, x.(event)) }
func (q *events) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type kstate int

const (
	none      kstate = iota // no kernel: the session has not opened, or its kernel was deleted
	queued                  // waiting for GPUs
	starting                // holds its GPUs, its pod is coming up
	running                 // up, idle or busy
	suspended               // culled with Suspend: no pod, no GPUs
	closed                  // the session is over
)

type acquisition int

const (
	aStart acquisition = iota
	aResume
	aRestart
)

// kernel is a session's kernel.
type kernel struct {
	s       *Session
	gpus    int
	state   kstate
	why     acquisition   // why it is queued or starting
	asked   time.Duration // when it asked for its GPUs
	since   time.Duration // when it got them
	busy    bool
	last    time.Duration // the gateway's LastActivity
	next    int           // the next training to run
	pending bool          // that training has come and waits for the kernel
	closing bool          // the session's stop tick has passed
}

type run struct {
	trace    *Trace
	settings gateway.Settings
	resume   time.Duration
	pool     pool
	kernels  []*kernel
	events   events
	seq      int
	now      time.Duration
	open     int // sessions not closed yet
	res      Result
}

func (r *run) push(at time.Duration, kind evKind, k *kernel) {
	r.seq++
	heap.Push(&r.events, event{at: at, kind: kind, seq: r.seq, k: k})
}

func (r *run) handle(e event) {
	k := e.k
	switch e.kind {
	case evOpen:
		r.acquire(k, aStart)
		if len(k.s.Trainings) > 0 {
			r.push(r.trace.at(k.s.Trainings[0].StartTick), evRequest, k)
		}
		r.push(r.trace.at(k.s.StopTick), evStop, k)
	case evRequest:
		k.pending = true
		switch k.state {
		case running:
			r.begin(k)
		case suspended:
			r.acquire(k, aResume)
		case none:
			r.acquire(k, aRestart)
		}
		// queued or starting: the cell runs once the kernel is up.
	case evReady:
		if k.state != starting {
			return // its session closed meanwhile
		}
		k.state = running
		k.last = r.now
		if k.pending {
			r.begin(k)
		}
	case evEnd:
		k.busy = false
		k.last = r.now
		k.next++
		if k.next < len(k.s.Trainings) {
			// The user runs the next cell at its time, or at once if this one ran late.
			r.push(max(r.now, r.trace.at(k.s.Trainings[k.next].StartTick)), evRequest, k)
		} else if k.closing {
			r.close(k)
		}
	case evStop:
		k.closing = true
		if k.next >= len(k.s.Trainings) {
			r.close(k)
		}
	case evCull:
		r.cull()
		if r.open > 0 {
			r.push(r.now+r.settings.CullInterval, evCull, nil)
		}
	}
}

// acquire puts a kernel in the queue for its GPUs; one that needs none gets its pod at once.
func (r *run) acquire(k *kernel, why acquisition) {
	k.state, k.why, k.asked = queued, why, r.now
	if k.gpus == 0 {
		r.grant(k)
		return
	}
	r.pool.enqueue(k)
}

// serve gives free GPUs to the kernels that wait, first come, first served.
func (r *run) serve() {
	for k := r.pool.next(); k != nil; k = r.pool.next() {
		r.grant(k)
	}
}

func (r *run) grant(k *kernel) {
	if k.gpus > 0 {
		r.res.Waits = append(r.res.Waits, r.now-k.asked)
	}
	switch k.why {
	case aStart:
		r.res.Starts++
	case aResume:
		r.res.Resumes++
	case aRestart:
		r.res.Restarts++
	}
	k.state, k.since = starting, r.now
	r.push(r.now+r.resume, evReady, k)
}

// begin runs the session's next cell on its kernel, which is up.
func (r *run) begin(k *kernel) {
	k.pending, k.busy, k.last = false, true, r.now
	d := time.Duration(k.s.Trainings[k.next].DurationTicks) * r.trace.Tick
	r.res.Busy += time.Duration(k.gpus) * d
	r.push(r.now+d, evEnd, k)
}

// free gives a kernel's GPUs back.
func (r *run) free(k *kernel) {
	r.res.Held += time.Duration(k.gpus) * (r.now - k.since)
	r.pool.release(k.gpus)
}

func (r *run) close(k *kernel) {
	switch k.state {
	case queued:
		r.pool.remove(k)
	case starting, running:
		r.free(k)
	}
	k.state = closed
	r.open--
	r.res.End = r.now
}

// cull asks the gateway's rule of every running kernel, as the culler does: kernels that are
// coming up or suspended are left alone.
func (r *run) cull() {
	now := epoch.Add(r.now)
	for _, k := range r.kernels {
		if k.state != running {
			continue
		}
		state := gateway.StateIdle
		if k.busy {
			state = gateway.StateBusy
		}
		// The notebook's tab is connected for as long as its session lasts.
		a := gateway.Activity{LastActivity: epoch.Add(k.last), ExecutionState: state, Connections: 1}
		if ok, _ := gateway.Cullable(a, false, r.settings, now); !ok {
			continue
		}
		r.free(k)
		r.res.Culls++
		if r.settings.CullPolicy == gateway.CullSuspend {
			k.state = suspended
		} else {
			k.state = none
		}
	}
}
