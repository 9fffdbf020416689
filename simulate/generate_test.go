package simulate

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "write examples/traces/synthetic-sensei.json from its generator")

// syntheticPath is the example trace, from this package's directory.
var syntheticPath = filepath.Join("..", "examples", "traces", "synthetic-sensei.json")

// The shipped example is what generateSynthetic makes, byte for byte.
func TestSyntheticTrace(t *testing.T) {
	want := generateSynthetic()
	if *update {
		require.NoError(t, os.WriteFile(syntheticPath, want, 0o644))
	}
	got, err := os.ReadFile(syntheticPath)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "the example trace differs from its generator: go test ./simulate -run TestSyntheticTrace -update")
}

// rng is splitmix64: integer draws only, so the trace is the same on every machine and Go.
type rng struct{ s uint64 }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// between draws from lo to hi, both included.
func (r *rng) between(lo, hi int64) int64 { return lo + int64(r.next()%uint64(hi-lo+1)) }

// bucket is a range of values drawn with a weight.
type bucket struct {
	weight int64
	lo, hi int64
}

func (r *rng) draw(bs []bucket) int64 {
	var total int64
	for _, b := range bs {
		total += b.weight
	}
	pick := r.between(0, total-1)
	for _, b := range bs {
		if pick < b.weight {
			return r.between(b.lo, b.hi)
		}
		pick -= b.weight
	}
	panic("unreachable")
}

// The shape of the synthetic day, in ticks of a minute, after the Sensei template: notebooks
// opened through the morning and early afternoon, the first cell some minutes after opening,
// mostly short cells (the Sensei template's start at 3 ticks) and now and then a long
// training, idle gaps from seconds to hours, and tabs left open long after the last cell.
var (
	synthGPUs      = []bucket{{10, 0, 0}, {50, 1, 1}, {20, 2, 2}, {15, 4, 4}, {5, 8, 8}}
	synthOpen      = []bucket{{1, 0, 420}}
	synthFirst     = []bucket{{40, 2, 10}, {40, 11, 40}, {20, 41, 120}}
	synthTrainings = []bucket{{50, 3, 5}, {35, 6, 12}, {15, 13, 25}}
	synthDuration  = []bucket{{60, 3, 6}, {28, 7, 20}, {9, 21, 60}, {3, 61, 180}}
	synthGap       = []bucket{{35, 0, 5}, {25, 6, 20}, {25, 21, 60}, {15, 61, 150}}
	synthTail      = []bucket{{25, 1, 10}, {40, 11, 60}, {35, 61, 240}}
)

const (
	synthSessions = 40
	synthSeed     = 20210601
	synthCPUCells = 30  // percent of cells that use no GPU
	synthDayEnd   = 600 // 10 h after the first notebook could open: no cell starts later
	synthClose    = 660 // tabs still open are closed an hour after that
)

type synthTraining struct {
	start, duration int64
	gpus, util      int64
}

type synthSession struct {
	start, stop int64
	gpus        int64
	trainings   []synthTraining
}

// generateSynthetic makes examples/traces/synthetic-sensei.json: a NotebookOS workload template
// of synthSessions notebooks over a working day (ticks of a minute).
func generateSynthetic() []byte {
	r := &rng{s: synthSeed}
	var ss []synthSession
	for range synthSessions {
		s := synthSession{start: r.draw(synthOpen), gpus: r.draw(synthGPUs)}
		at := s.start + r.draw(synthFirst)
		n := r.draw(synthTrainings)
		for i := range n {
			if i > 0 {
				at += r.draw(synthGap)
				if at >= synthDayEnd {
					break // no new cell after the working day
				}
			}
			tr := synthTraining{start: at, duration: r.draw(synthDuration), gpus: s.gpus, util: r.between(5, 95)}
			if r.between(1, 100) <= synthCPUCells {
				tr.gpus = 0
			}
			s.trainings = append(s.trainings, tr)
			at += tr.duration
		}
		// Tabs left open close by the evening (or just after a cell that ran late).
		s.stop = min(at+r.draw(synthTail), max(at+1, synthClose))
		ss = append(ss, s)
	}
	sort.SliceStable(ss, func(i, j int) bool { return ss[i].start < ss[j].start })

	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"workloadTitle\": \"synthetic Sensei-like working day\",\n  \"workloadSeed\": %d,\n", synthSeed)
	fmt.Fprintf(&b, "  \"numberOfSessions\": %d,\n  \"tick_seconds\": 60,\n  \"sessions\": [\n", len(ss))
	for i, s := range ss {
		fmt.Fprintf(&b, "    {\"id\": \"session-%02d\", \"start_tick\": %d, \"stop_tick\": %d, \"num_training_events\": %d,\n",
			i+1, s.start, s.stop, len(s.trainings))
		fmt.Fprintf(&b, "     \"max_resource_request\": {\"gpus\": %d, \"gpu_type\": \"ANY_GPU\"},\n     \"trainings\": [\n", s.gpus)
		for j, tr := range s.trainings {
			fmt.Fprintf(&b, "      {\"start_tick\": %d, \"duration_in_ticks\": %d, \"end_tick\": %d, \"gpus\": %d, \"gpu_utilizations\": [",
				tr.start, tr.duration, tr.start+tr.duration, tr.gpus)
			for g := range tr.gpus {
				if g > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "{\"utilization\": %d}", tr.util)
			}
			b.WriteString("]}")
			b.WriteString(sep(j, len(s.trainings)))
		}
		b.WriteString("     ]}")
		b.WriteString(sep(i, len(ss)))
	}
	b.WriteString("  ]\n}\n")
	return b.Bytes()
}

func sep(i, n int) string {
	if i < n-1 {
		return ",\n"
	}
	return "\n"
}
