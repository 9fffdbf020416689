package simulate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// DefaultTick is the length of a tick when a trace does not say: NotebookOS's default trace
// step (its templates carry no tick length; the Adobe Sensei readings they come from are 60 s
// apart).
const DefaultTick = 60 * time.Second

// Trace is a notebook session trace: a NotebookOS workload template, checked.
type Trace struct {
	// Title is the template's workloadTitle (or workload_title), if any.
	Title string
	// Tick is the length of one tick: tick_seconds, else DefaultTick.
	Tick time.Duration
	// Sessions are the notebooks, in the file's order.
	Sessions []Session
}

// Session is one notebook: its kernel lives from StartTick to StopTick.
type Session struct {
	ID        string
	StartTick int64
	StopTick  int64
	// GPUs is what the session's kernel is given for its life (its kernelspec): the larger of
	// max_resource_request.gpus and the most any of its trainings uses. It may be 0 (a CPU
	// notebook).
	GPUs int
	// Trainings are the cells that run, sorted by StartTick, none overlapping.
	Trainings []Training
}

// Training is one cell that runs on the session's kernel (the kernel is busy meanwhile).
type Training struct {
	StartTick     int64
	DurationTicks int64
	// GPUs is the training's own GPU count (gpus, num_gpus or the length of gpu_utilizations).
	// The simulation only uses it to size the session's kernel.
	GPUs int
}

// EndTick is the tick the training ends at.
func (t Training) EndTick() int64 { return t.StartTick + t.DurationTicks }

// at is when a tick begins, from the trace's start.
func (t *Trace) at(tick int64) time.Duration { return time.Duration(tick) * t.Tick }

// Trainings counts the trainings of every session.
func (t *Trace) Trainings() int {
	n := 0
	for _, s := range t.Sessions {
		n += len(s.Trainings)
	}
	return n
}

// PeakGPUs is the most GPUs the sessions hold at once when each keeps its GPUs for its whole
// life: the cluster size at which nobody waits with GPUs bound per notebook.
func (t *Trace) PeakGPUs() int {
	type edge struct {
		tick int64
		d    int
	}
	var es []edge
	for _, s := range t.Sessions {
		es = append(es, edge{s.StartTick, s.GPUs}, edge{s.StopTick, -s.GPUs})
	}
	// Stops before starts at the same tick: a GPU freed at a tick can be taken at that tick.
	sort.Slice(es, func(i, j int) bool {
		if es[i].tick != es[j].tick {
			return es[i].tick < es[j].tick
		}
		return es[i].d < es[j].d
	})
	peak, cur := 0, 0
	for _, e := range es {
		cur += e.d
		peak = max(peak, cur)
	}
	return peak
}

// Load reads and checks the trace in a file.
func Load(path string) (*Trace, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the trace: %w", err)
	}
	t, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// Read reads and checks a trace.
func Read(r io.Reader) (*Trace, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading the trace: %w", err)
	}
	return Parse(b)
}

// The JSON as NotebookOS writes it; pointers tell a missing field from a zero. Fields the
// simulation does not need (cpus, memory, vram, remoteStorageDefinition, ...) are ignored.
type rawTrace struct {
	WorkloadTitle  *string       `json:"workloadTitle"`
	WorkloadTitle2 *string       `json:"workload_title"`
	TickSeconds    *float64      `json:"tick_seconds"`
	Sessions       *[]rawSession `json:"sessions"`
}

type rawSession struct {
	ID                 *string          `json:"id"`
	StartTick          *int64           `json:"start_tick"`
	StopTick           *int64           `json:"stop_tick"`
	Trainings          []rawTraining    `json:"trainings"`
	MaxResourceRequest *rawResourceCeil `json:"max_resource_request"`
}

type rawResourceCeil struct {
	GPUs *int `json:"gpus"`
}

type rawTraining struct {
	StartTick       *int64             `json:"start_tick"`
	DurationInTicks *int64             `json:"duration_in_ticks"`
	EndTick         *int64             `json:"end_tick"`
	GPUs            *int               `json:"gpus"`
	NumGPUs         *int               `json:"num_gpus"`
	GPUUtilizations *[]json.RawMessage `json:"gpu_utilizations"`
}

// Parse checks a trace given as JSON. An error names the field and how to fix it.
func Parse(b []byte) (*Trace, error) {
	var raw rawTrace
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, jsonError(b, err)
	}
	t := &Trace{Tick: DefaultTick}
	switch {
	case raw.WorkloadTitle != nil:
		t.Title = *raw.WorkloadTitle
	case raw.WorkloadTitle2 != nil:
		t.Title = *raw.WorkloadTitle2
	}
	if raw.TickSeconds != nil {
		d := time.Duration(*raw.TickSeconds * float64(time.Second))
		if d <= 0 {
			return nil, fmt.Errorf("tick_seconds %v: a tick lasts a positive number of seconds (or leave tick_seconds out for %v)", *raw.TickSeconds, DefaultTick)
		}
		t.Tick = d
	}
	if raw.Sessions == nil {
		return nil, errors.New(`no "sessions": a workload template lists its notebook sessions in a "sessions" array`)
	}
	if len(*raw.Sessions) == 0 {
		return nil, errors.New(`"sessions" is empty: give the trace at least one session`)
	}
	seen := map[string]int{}
	for i, rs := range *raw.Sessions {
		s, err := parseSession(i, rs)
		if err != nil {
			return nil, err
		}
		if j, dup := seen[s.ID]; dup {
			return nil, fmt.Errorf("sessions[%d]: id %q is also sessions[%d]'s: give each session its own id", i, s.ID, j)
		}
		seen[s.ID] = i
		t.Sessions = append(t.Sessions, s)
	}
	return t, nil
}

func parseSession(i int, rs rawSession) (Session, error) {
	where := fmt.Sprintf("sessions[%d]", i)
	if rs.ID == nil || *rs.ID == "" {
		return Session{}, fmt.Errorf(`%s: "id" is missing: give each session a unique id`, where)
	}
	where = fmt.Sprintf("%s (id %q)", where, *rs.ID)
	if rs.StartTick == nil {
		return Session{}, fmt.Errorf(`%s: "start_tick" is missing: give the tick the notebook opens at`, where)
	}
	if rs.StopTick == nil {
		return Session{}, fmt.Errorf(`%s: "stop_tick" is missing: give the tick the notebook closes at`, where)
	}
	s := Session{ID: *rs.ID, StartTick: *rs.StartTick, StopTick: *rs.StopTick}
	if s.StartTick < 0 {
		return Session{}, fmt.Errorf("%s: start_tick %d is negative: ticks count from 0", where, s.StartTick)
	}
	if s.StopTick <= s.StartTick {
		return Session{}, fmt.Errorf("%s: stop_tick %d is not after start_tick %d: a session closes after it opens", where, s.StopTick, s.StartTick)
	}
	for j, rt := range rs.Trainings {
		tr, err := parseTraining(fmt.Sprintf("%s trainings[%d]", where, j), rt)
		if err != nil {
			return Session{}, err
		}
		s.Trainings = append(s.Trainings, tr)
		s.GPUs = max(s.GPUs, tr.GPUs)
	}
	if c := rs.MaxResourceRequest; c != nil && c.GPUs != nil {
		if *c.GPUs < 0 {
			return Session{}, fmt.Errorf("%s: max_resource_request.gpus %d is negative: give a GPU count, 0 or more", where, *c.GPUs)
		}
		s.GPUs = max(s.GPUs, *c.GPUs)
	}
	sort.SliceStable(s.Trainings, func(a, b int) bool { return s.Trainings[a].StartTick < s.Trainings[b].StartTick })
	for j, tr := range s.Trainings {
		if tr.StartTick < s.StartTick || tr.EndTick() > s.StopTick {
			return Session{}, fmt.Errorf("%s: a training runs from tick %d to %d, outside the session (%d to %d): move it inside, or widen start_tick/stop_tick",
				where, tr.StartTick, tr.EndTick(), s.StartTick, s.StopTick)
		}
		if j > 0 && tr.StartTick < s.Trainings[j-1].EndTick() {
			prev := s.Trainings[j-1]
			return Session{}, fmt.Errorf("%s: a training starts at tick %d, before the one started at tick %d ends (%d): a kernel runs one cell at a time, so start it at %d or later",
				where, tr.StartTick, prev.StartTick, prev.EndTick(), prev.EndTick())
		}
	}
	return s, nil
}

func parseTraining(where string, rt rawTraining) (Training, error) {
	if rt.StartTick == nil {
		return Training{}, fmt.Errorf(`%s: "start_tick" is missing: give the tick the cell starts at`, where)
	}
	if rt.DurationInTicks == nil {
		return Training{}, fmt.Errorf(`%s: "duration_in_ticks" is missing: give how many ticks the cell runs`, where)
	}
	tr := Training{StartTick: *rt.StartTick, DurationTicks: *rt.DurationInTicks}
	if tr.DurationTicks <= 0 {
		return Training{}, fmt.Errorf("%s: duration_in_ticks %d: a training lasts at least one tick", where, tr.DurationTicks)
	}
	if rt.EndTick != nil && *rt.EndTick != tr.EndTick() {
		return Training{}, fmt.Errorf("%s: end_tick %d is not start_tick + duration_in_ticks (%d): fix either, or leave end_tick out", where, *rt.EndTick, tr.EndTick())
	}
	// NotebookOS writes the GPU count three ways; where several are given they must agree.
	n, from := -1, ""
	for _, c := range []struct {
		name string
		v    *int
	}{{"gpus", rt.GPUs}, {"num_gpus", rt.NumGPUs}, {"gpu_utilizations", lenOf(rt.GPUUtilizations)}} {
		if c.v == nil {
			continue
		}
		if *c.v < 0 {
			return Training{}, fmt.Errorf("%s: %s %d is negative: give a GPU count, 0 or more", where, c.name, *c.v)
		}
		if n >= 0 && *c.v != n {
			return Training{}, fmt.Errorf("%s: %s says %d GPUs but %s says %d: make them agree", where, from, n, c.name, *c.v)
		}
		n, from = *c.v, c.name
	}
	if n < 0 {
		return Training{}, fmt.Errorf(`%s: no GPU count: give "gpus" (0 for a cell that uses none)`, where)
	}
	tr.GPUs = n
	return tr, nil
}

func lenOf(l *[]json.RawMessage) *int {
	if l == nil {
		return nil
	}
	n := len(*l)
	return &n
}

// jsonError says where in the file a JSON error is, and what to do.
func jsonError(b []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case len(bytes.TrimSpace(b)) == 0:
		return errors.New("the trace is empty: give a NotebookOS workload template (a JSON object with \"sessions\")")
	case errors.As(err, &syn) && strings.Contains(syn.Error(), "unexpected end"):
		return fmt.Errorf("the JSON ends early (%w): is the file cut short?", err)
	case errors.As(err, &syn):
		return fmt.Errorf("line %d: not valid JSON (%w): a trace is one JSON object, as NotebookOS writes its workload templates", lineAt(b, syn.Offset), err)
	case errors.As(err, &typ):
		want := typ.Type.String()
		switch typ.Type.Kind().String() {
		case "int64", "int":
			want = "a whole number"
		case "float64":
			want = "a number"
		case "string":
			want = "a string"
		case "slice":
			want = "an array"
		case "struct":
			want = "an object"
		}
		field := typ.Field
		if field == "" {
			field = "the trace"
		}
		return fmt.Errorf("line %d: %s is a JSON %s, want %s: %w", lineAt(b, typ.Offset), field, typ.Value, want, err)
	}
	return fmt.Errorf("not a trace: %w", err)
}

func lineAt(b []byte, off int64) int {
	off = min(max(off, 0), int64(len(b)))
	return 1 + bytes.Count(b[:off], []byte("\n"))
}
