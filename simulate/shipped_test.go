package simulate

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
)

// shippedOptions are the README's table: the command's defaults on a cluster half the size
// that GPUs bound per notebook need at their peak.
func shippedOptions(tr *Trace) Options {
	return Options{Settings: Plan(DefaultThresholds, gateway.CullSuspend, []time.Duration{15 * time.Minute}),
		CullInterval: time.Minute, CullConnected: true, GPUs: tr.PeakGPUs() / 2, Resume: DefaultResume}
}

// What must hold of the shipped trace's runs, whatever its numbers.
func TestShippedTrace(t *testing.T) {
	tr, err := Load(syntheticPath)
	require.NoError(t, err)
	require.Len(t, tr.Sessions, 40)
	var bound, busy time.Duration
	for _, s := range tr.Sessions {
		bound += time.Duration(s.GPUs) * time.Duration(s.StopTick-s.StartTick) * tr.Tick
		for _, x := range s.Trainings {
			busy += time.Duration(s.GPUs) * time.Duration(x.DurationTicks) * tr.Tick
		}
	}
	thresholds := []time.Duration{0, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 2 * time.Hour}
	for _, gpus := range []int{0, tr.PeakGPUs() / 2} {
		t.Run(fmt.Sprintf("%d GPUs", gpus), func(t *testing.T) {
			o := Options{CullInterval: time.Minute, CullConnected: true, GPUs: gpus, Resume: DefaultResume,
				Settings: append(Plan(thresholds, gateway.CullSuspend, nil), Plan(thresholds[1:], gateway.CullDelete, nil)...)}
			tb, err := Compare(tr, o)
			require.NoError(t, err)
			byKey := map[Setting]Result{}
			for _, row := range tb.Rows {
				r := row.Result
				byKey[row.Setting] = r
				assert.Equal(t, bound, r.Bound, "%s", row.Setting)
				assert.Equal(t, busy, r.Busy, "%s: every cell runs once, on its kernel's GPUs", row.Setting)
				assert.LessOrEqual(t, r.Held, r.Bound, "%s: held at most bound", row.Setting)
				assert.LessOrEqual(t, r.Busy, r.Held, "%s: busy within held", row.Setting)
				assert.Equal(t, len(tr.Sessions), r.Starts, "%s: each notebook starts its kernel once", row.Setting)
				assert.LessOrEqual(t, r.Resumes+r.Restarts, r.Culls, "%s: each resume or restart follows a cull", row.Setting)
				if row.Setting.Policy == gateway.CullSuspend {
					assert.Zero(t, r.Restarts, "%s", row.Setting)
				} else {
					assert.Zero(t, r.Resumes, "%s", row.Setting)
				}
			}
			none := byKey[Setting{}]
			assert.Zero(t, none.Culls)
			if gpus == 0 {
				assert.Equal(t, bound, none.Held, "never culled, with GPUs enough: bound per notebook")
				for _, r := range byKey {
					assert.Zero(t, Percentile(r.Waits, 1), "nobody waits with GPUs enough")
				}
			} else {
				suspend := byKey[Setting{gateway.CullSuspend, 15 * time.Minute}]
				assert.Less(t, Percentile(suspend.Waits, 0.95), Percentile(none.Waits, 0.95), "elastic kernels wait less for a GPU")
			}
			assert.Positive(t, byKey[Setting{gateway.CullSuspend, 15 * time.Minute}].Saved(), "Suspend at 15m saves GPU-hours")
			for _, p := range []string{gateway.CullSuspend, gateway.CullDelete} {
				prev := Setting{p, thresholds[1]}
				for _, d := range thresholds[2:] {
					cur := Setting{p, d}
					assert.LessOrEqual(t, byKey[cur].Saved(), byKey[prev].Saved(), "%s saves no more than %s", cur, prev)
					if gpus == 0 {
						// (On a small cluster no culling also holds less: sessions wait.)
						assert.Greater(t, byKey[cur].Saved(), none.Saved(), "%s saves more than no culling", cur)
					}
					prev = cur
				}
			}
			// Delete's fresh kernel takes as long as a resume here, so the GPUs move the same;
			// what differs is that the kernels lose their variables.
			for _, d := range thresholds[1:] {
				s, del := byKey[Setting{gateway.CullSuspend, d}], byKey[Setting{gateway.CullDelete, d}]
				assert.Equal(t, s.Held, del.Held, "%v", d)
				assert.Equal(t, s.Resumes, del.Restarts, "%v", d)
			}
		})
	}
}

// BenchmarkShippedTrace prints the README's table for the shipped trace (make test runs every
// benchmark, and shows what they print) and times the simulation.
func BenchmarkShippedTrace(b *testing.B) {
	tr, err := Load(syntheticPath)
	require.NoError(b, err)
	o := shippedOptions(tr)
	tb, err := Compare(tr, o)
	require.NoError(b, err)
	fmt.Printf("\nelastic-jupyter simulate --trace examples/traces/synthetic-sensei.json --gpus %d\n", o.GPUs)
	require.NoError(b, tb.Write(os.Stdout))
	for b.Loop() {
		if _, err := Compare(tr, o); err != nil {
			b.Fatal(err)
		}
	}
}
