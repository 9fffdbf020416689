package simulate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
)

func gatewaySuspend(timeout time.Duration) gateway.Settings {
	return gateway.Settings{CullIdleTimeout: timeout, CullInterval: time.Minute, CullConnected: true, CullPolicy: gateway.CullSuspend}
}

// threeSessions is the trace TestHandComputedThreeSessions computes by hand: ticks of one
// minute, one GPU per session.
//
//	A opens at 0, closes at 120; cells 2–12 and 72–82
//	B opens at 0, closes at 60;  cell 5–25
//	C opens at 30, closes at 100; cells 32–37 and 90–92
//
// Bound per notebook: A 120 + B 60 + C 70 = 250 GPU-minutes. Busy: A 10+10, B 20, C 5+2 = 47.
const threeSessions = `{
  "workloadTitle": "three sessions",
  "tick_seconds": 60,
  "sessions": [
    {"id": "A", "start_tick": 0, "stop_tick": 120, "max_resource_request": {"gpus": 1},
     "trainings": [{"start_tick": 2, "duration_in_ticks": 10, "gpus": 1},
                   {"start_tick": 72, "duration_in_ticks": 10, "end_tick": 82, "gpus": 1}]},
    {"id": "B", "start_tick": 0, "stop_tick": 60,
     "trainings": [{"start_tick": 5, "duration_in_ticks": 20, "gpu_utilizations": [{"utilization": 50}]}]},
    {"id": "C", "start_tick": 30, "stop_tick": 100,
     "trainings": [{"start_tick": 32, "duration_in_ticks": 5, "gpus": 1},
                   {"start_tick": 90, "duration_in_ticks": 2, "gpus": 0}]}
  ]
}`

func TestParseReadsNotebookOSTemplates(t *testing.T) {
	tr, err := Parse([]byte(threeSessions))
	require.NoError(t, err)
	assert.Equal(t, "three sessions", tr.Title)
	assert.Equal(t, time.Minute, tr.Tick)
	require.Len(t, tr.Sessions, 3)
	assert.Equal(t, Session{ID: "B", StartTick: 0, StopTick: 60, GPUs: 1,
		Trainings: []Training{{StartTick: 5, DurationTicks: 20, GPUs: 1}}}, tr.Sessions[1])
	assert.Equal(t, 1, tr.Sessions[2].GPUs, "the session's kernel has the most GPUs any of its cells uses")
	assert.Equal(t, 5, tr.Trainings())
	assert.Equal(t, 3, tr.PeakGPUs(), "A, B and C are open at once from 30 to 60")

	// A template as NotebookOS's dashboard ships them: snake_case twins, fields the simulation
	// does not read, no tick length (60 s), trainings out of order, a session of CPU cells.
	tr, err = Parse([]byte(`{"workload_title": "t", "timescale_adjustment_factor": 0.1,
	  "remoteStorageDefinition": {"name": "AWS S3"},
	  "sessions": [{"id": "u", "start_tick": 1, "stop_tick": 18, "num_training_events": 2,
	    "trainings": [
	      {"start_tick": 10, "duration_in_ticks": 2, "cpus": 300, "memory": 300, "vram": 3, "gpus": 3,
	       "gpu_utilizations": [{"utilization": 30}, {"utilization": 30}, {"utilization": 30}]},
	      {"start_tick": 2, "duration_in_ticks": 2, "end_tick": 4, "gpus": 0, "gpu_utilizations": []}],
	    "max_resource_request": {"cpus": 300, "memory": 300, "gpus": 3, "vram": 3, "gpu_type": "ANY_GPU"}},
	    {"id": "cpu", "start_tick": 0, "stop_tick": 5, "trainings": [{"start_tick": 0, "duration_in_ticks": 5, "num_gpus": 0}]}]}`))
	require.NoError(t, err)
	assert.Equal(t, "t", tr.Title)
	assert.Equal(t, DefaultTick, tr.Tick)
	assert.Equal(t, []Training{{StartTick: 2, DurationTicks: 2, GPUs: 0}, {StartTick: 10, DurationTicks: 2, GPUs: 3}}, tr.Sessions[0].Trainings)
	assert.Equal(t, 3, tr.Sessions[0].GPUs)
	assert.Equal(t, 0, tr.Sessions[1].GPUs)
}

// Bad input is refused with the place and the fix, never a panic.
func TestParseErrors(t *testing.T) {
	session := func(s string) string { return `{"sessions": [` + s + `]}` }
	training := func(s string) string {
		return session(`{"id": "a", "start_tick": 0, "stop_tick": 100, "trainings": [` + s + `]}`)
	}
	for _, tc := range []struct{ in, want string }{
		{``, "the trace is empty"},
		{" \n", "the trace is empty"},
		{`{"sessions": [`, "the JSON ends early"},
		{"{\n\"sessions\": [}", `line 2: not valid JSON`},
		{`[]`, "line 1: the trace is a JSON array, want an object"},
		{`{}`, `no "sessions": a workload template lists its notebook sessions in a "sessions" array`},
		{`{"sessions": []}`, `"sessions" is empty`},
		{`{"sessions": {}}`, "sessions is a JSON object, want an array"},
		{`{"tick_seconds": 0, "sessions": []}`, "tick_seconds 0: a tick lasts a positive number of seconds"},
		{`{"tick_seconds": "60", "sessions": []}`, "tick_seconds is a JSON string, want a number"},
		{session(`{"start_tick": 0, "stop_tick": 1}`), `sessions[0]: "id" is missing: give each session a unique id`},
		{session(`{"id": "a", "stop_tick": 1}`), `sessions[0] (id "a"): "start_tick" is missing`},
		{session(`{"id": "a", "start_tick": 0}`), `sessions[0] (id "a"): "stop_tick" is missing`},
		{"{\"sessions\": [\n{\"id\": \"a\", \"start_tick\": 1.5, \"stop_tick\": 3}]}", "line 2: sessions.start_tick is a JSON number 1.5, want a whole number"},
		{session(`{"id": "a", "start_tick": -1, "stop_tick": 3}`), "start_tick -1 is negative"},
		{session(`{"id": "a", "start_tick": 3, "stop_tick": 3}`), "stop_tick 3 is not after start_tick 3: a session closes after it opens"},
		{session(`{"id": "a", "start_tick": 0, "stop_tick": 3}, {"id": "a", "start_tick": 0, "stop_tick": 3}`), `sessions[1]: id "a" is also sessions[0]'s: give each session its own id`},
		{session(`{"id": "a", "start_tick": 0, "stop_tick": 3, "max_resource_request": {"gpus": -1}}`), "max_resource_request.gpus -1 is negative"},
		{training(`{"duration_in_ticks": 1, "gpus": 1}`), `sessions[0] (id "a") trainings[0]: "start_tick" is missing`},
		{training(`{"start_tick": 1, "gpus": 1}`), `"duration_in_ticks" is missing`},
		{training(`{"start_tick": 1, "duration_in_ticks": 0, "gpus": 1}`), "duration_in_ticks 0: a training lasts at least one tick"},
		{training(`{"start_tick": 1, "duration_in_ticks": 2, "end_tick": 4, "gpus": 1}`), "end_tick 4 is not start_tick + duration_in_ticks (3)"},
		{training(`{"start_tick": 1, "duration_in_ticks": 2}`), `no GPU count: give "gpus" (0 for a cell that uses none)`},
		{training(`{"start_tick": 1, "duration_in_ticks": 2, "gpus": -2}`), "gpus -2 is negative"},
		{training(`{"start_tick": 1, "duration_in_ticks": 2, "gpus": 2, "gpu_utilizations": [{"utilization": 1}]}`), "gpus says 2 GPUs but gpu_utilizations says 1: make them agree"},
		{training(`{"start_tick": 1, "duration_in_ticks": 2, "gpus": 2, "num_gpus": 1}`), "gpus says 2 GPUs but num_gpus says 1"},
		{training(`{"start_tick": 1, "duration_in_ticks": 2, "gpus": "2"}`), "sessions.trainings.gpus is a JSON string, want a whole number"},
		{training(`{"start_tick": 99, "duration_in_ticks": 2, "gpus": 1}`), "a training runs from tick 99 to 101, outside the session (0 to 100): move it inside"},
		{training(`{"start_tick": 5, "duration_in_ticks": 10, "gpus": 1}, {"start_tick": 10, "duration_in_ticks": 1, "gpus": 1}`),
			"a training starts at tick 10, before the one started at tick 5 ends (15): a kernel runs one cell at a time, so start it at 15 or later"},
	} {
		_, err := Parse([]byte(tc.in))
		if assert.Error(t, err, tc.in) {
			assert.Contains(t, err.Error(), tc.want, tc.in)
		}
	}
}

func TestLoadNamesTheFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "absent.json"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	assert.ErrorContains(t, err, "reading the trace")

	p := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(p, []byte(`{"sessions": []}`), 0o644))
	_, err = Load(p)
	assert.ErrorContains(t, err, p+`: "sessions" is empty`)

	_, err = Read(strings.NewReader(threeSessions))
	assert.NoError(t, err)
}

// Whatever the bytes, Parse answers with a trace or an error, and Run with a result or an
// error (go test -fuzz FuzzParse ./simulate to search further than the seeds).
func FuzzParse(f *testing.F) {
	f.Add([]byte(threeSessions))
	f.Add([]byte(`{"sessions": [{"id": "a", "start_tick": 0, "stop_tick": 3, "trainings": [{"start_tick": 1, "duration_in_ticks": 1, "gpus": 2}]}]}`))
	f.Add([]byte(`{"tick_seconds": 1e300, "sessions": [{"id": "a", "start_tick": 0, "stop_tick": 3}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := Parse(b)
		if err != nil {
			return
		}
		var span int64
		for _, s := range tr.Sessions {
			span = max(span, s.StopTick)
		}
		if span > 100_000 {
			return // a valid but long trace: slow to replay, not wrong
		}
		_, _ = Run(tr, Config{GPUs: 2, Resume: time.Second, Settings: gatewaySuspend(time.Minute)})
	})
}
