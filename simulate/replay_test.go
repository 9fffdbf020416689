package simulate

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
)

func minutes(m float64) time.Duration { return time.Duration(m * float64(time.Minute)) }

func waits(ms ...float64) []time.Duration {
	var ds []time.Duration
	for _, m := range ms {
		ds = append(ds, minutes(m))
	}
	return ds
}

// The hand computations, for a resume (GPUs to kernel up) of half a minute and a culler that
// looks every minute (at 1, 2, 3, ... min). A kernel idle since t is culled at the first whole
// minute after t+15 (the rule wants idle > timeout).
func TestHandComputedThreeSessions(t *testing.T) {
	tr, err := Parse([]byte(threeSessions))
	require.NoError(t, err)
	suspend := func(timeout time.Duration, gpus int) Config {
		return Config{GPUs: gpus, Resume: 30 * time.Second, Settings: gateway.Settings{
			CullIdleTimeout: timeout, CullInterval: time.Minute, CullConnected: true, CullPolicy: gateway.CullSuspend}}
	}
	deleteAt := func(timeout time.Duration, gpus int) Config {
		c := suspend(timeout, gpus)
		c.Settings.CullPolicy = gateway.CullDelete
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want Result
	}{{
		// Never culled, GPUs enough for all: every kernel holds its GPU from open to close,
		// as when bound per notebook.
		name: "never, enough GPUs",
		cfg:  suspend(0, 0),
		want: Result{Held: minutes(250), Waits: waits(0, 0, 0), Starts: 3, End: minutes(120)},
	}, {
		// Never culled, 2 GPUs: A and B get theirs at 0. C opens at 30 and waits for B's GPU
		// until B closes at 60 (wait 30); C is up at 60.5, runs 60.5–65.5, then 90–92, and
		// closes at 100. Held: A 0–120 (120) + B 0–60 (60) + C 60–100 (40) = 220.
		name: "never, 2 GPUs",
		cfg:  suspend(0, 2),
		want: Result{Held: minutes(220), Waits: waits(0, 0, 30), Starts: 3, End: minutes(120)},
	}, {
		// Suspend after 15 min, 2 GPUs. A idle since 12: suspended at 28. B idle since 25:
		// suspended at 41. C opens at 30 and takes A's GPU (no wait), runs 32–37, suspended
		// at 53. A's cell at 72 resumes it (GPU free, no wait): up 72.5, runs 72.5–82.5,
		// suspended at 98. C's cell at 90 resumes it (1 of 2 used): runs 90.5–92.5, and C
		// closes at 100 before its cull (108). Held: A 0–28 + 72–98 (28+26) + B 0–41 (41)
		// + C 30–53 + 90–100 (23+10) = 128. Culls: A, B, C, A.
		name: "Suspend 15m, 2 GPUs",
		cfg:  suspend(15*time.Minute, 2),
		want: Result{Held: minutes(128), Waits: waits(0, 0, 0, 0, 0), Starts: 3, Resumes: 2, Culls: 4, End: minutes(120)},
	}, {
		// Delete after 15 min, 1 GPU. A gets it at 0, runs 2–12, is deleted at 28. B, waiting
		// since 0, gets it at 28 (wait 28), runs its cell (asked at 5) 28.5–48.5, and closes at
		// 60 before its cull (64). C, waiting since 30, gets it at 60 (wait 30), runs 60.5–
		// 65.5, deleted at 81. A's cell at 72 starts a fresh kernel: GPU at 81 (wait 9), runs
		// 81.5–91.5, deleted at 107. C's cell at 90 starts a fresh kernel: GPU at 107 (wait
		// 17), runs 107.5–109.5; C's stop (100) has passed, so it closes then. Held: A 0–28 +
		// 81–107 (28+26) + B 28–60 (32) + C 60–81 + 107–109.5 (21+2.5) = 109.5.
		name: "Delete 15m, 1 GPU",
		cfg:  deleteAt(15*time.Minute, 1),
		want: Result{Held: minutes(109.5), Waits: waits(0, 28, 30, 9, 17), Starts: 3, Restarts: 2, Culls: 3, End: minutes(120)},
	}, {
		// Suspend after 15 min, 1 GPU: the same times as Delete; the kernels resume instead.
		name: "Suspend 15m, 1 GPU",
		cfg:  suspend(15*time.Minute, 1),
		want: Result{Held: minutes(109.5), Waits: waits(0, 28, 30, 9, 17), Starts: 3, Resumes: 2, Culls: 3, End: minutes(120)},
	}, {
		// Never culled, 1 GPU: A holds it until it closes at 120. B (waiting since 0, its
		// cell asked at 5) gets it at 120, runs 120.5–140.5 and closes; C (waiting since 30)
		// gets it at 140.5, runs 141–146 and 146–148, and closes. Held: 120 + 20.5 + 7.5.
		name: "never, 1 GPU",
		cfg:  suspend(0, 1),
		want: Result{Held: minutes(148), Waits: waits(0, 120, 110.5), Starts: 3, End: minutes(148)},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Run(tr, tc.cfg)
			require.NoError(t, err)
			tc.want.Bound = minutes(250)
			tc.want.Busy = minutes(47)
			assert.Equal(t, tc.want, got)
		})
	}
}

// The culler's rule decides: with cullConnected false, no kernel of an open notebook is culled.
func TestConnectedKernelsNeedCullConnected(t *testing.T) {
	tr, err := Parse([]byte(threeSessions))
	require.NoError(t, err)
	got, err := Run(tr, Config{Settings: gateway.Settings{CullIdleTimeout: time.Minute, CullInterval: time.Minute, CullPolicy: gateway.CullSuspend}})
	require.NoError(t, err)
	assert.Zero(t, got.Culls)
	assert.Equal(t, got.Bound, got.Held)
}

func TestRunRefusesWhatItCannotSimulate(t *testing.T) {
	tr, err := Parse([]byte(threeSessions))
	require.NoError(t, err)
	big, err := Parse([]byte(strings.Replace(threeSessions, `"max_resource_request": {"gpus": 1}`, `"max_resource_request": {"gpus": 4}`, 1)))
	require.NoError(t, err)
	huge, err := Parse([]byte(strings.Replace(threeSessions, `"stop_tick": 120`, `"stop_tick": 9000000000`, 1)))
	require.NoError(t, err)
	for _, tc := range []struct {
		trace *Trace
		cfg   Config
		want  string
	}{
		{tr, Config{Settings: gateway.Settings{CullPolicy: "Pause"}}, `cull policy "Pause": use Suspend or Delete`},
		{tr, Config{Settings: gateway.Settings{CullBusy: true}}, "cullBusy is not simulated"},
		{tr, Config{GPUs: -1}, "-1 is negative"},
		{tr, Config{Resume: -time.Second}, "resume time -1s is negative"},
		{big, Config{GPUs: 2}, `session "A" needs 4 GPUs at once, more than the cluster's 2: give the cluster at least 4`},
		{huge, Config{}, "the trace is beyond what the simulation counts (3 GPUs for up to"},
	} {
		_, err := Run(tc.trace, tc.cfg)
		assert.ErrorContains(t, err, tc.want)
	}
}
