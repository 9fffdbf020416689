package simulate_test

import (
	"fmt"
	"os"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/simulate"
)

// The three-session trace of the hand-computed test on a cluster of one GPU; every number of
// the table is worked out in TestHandComputedThreeSessions: bound 250 GPU-minutes (4.2 h), busy
// 47 (0.8 h); no culling holds 148 (2.5 h; waits 0, 110.5 and 120 min); Suspend or Delete
// after 15 min hold 109.5 (1.8 h; waits 0, 9, 17, 28 and 30 min).
func ExampleCompare() {
	tr, err := simulate.Parse([]byte(`{"workloadTitle": "three sessions", "tick_seconds": 60, "sessions": [
	  {"id": "A", "start_tick": 0, "stop_tick": 120, "trainings": [
	    {"start_tick": 2, "duration_in_ticks": 10, "gpus": 1}, {"start_tick": 72, "duration_in_ticks": 10, "gpus": 1}]},
	  {"id": "B", "start_tick": 0, "stop_tick": 60, "trainings": [{"start_tick": 5, "duration_in_ticks": 20, "gpus": 1}]},
	  {"id": "C", "start_tick": 30, "stop_tick": 100, "trainings": [
	    {"start_tick": 32, "duration_in_ticks": 5, "gpus": 1}, {"start_tick": 90, "duration_in_ticks": 2, "gpus": 0}]}]}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	tb, err := simulate.Compare(tr, simulate.Options{
		Settings:     []simulate.Setting{{IdleTimeout: 0}, {Policy: "Suspend", IdleTimeout: 15 * time.Minute}, {Policy: "Delete", IdleTimeout: 15 * time.Minute}},
		CullInterval: time.Minute, CullConnected: true, GPUs: 1, Resume: 30 * time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := tb.Write(os.Stdout); err != nil {
		fmt.Println(err)
	}
	// Output:
	// "three sessions": 3 sessions over 2h, 5 trainings, tick 1m; bound per notebook they need 3 GPUs at once
	// cluster: 1 GPU; culler every 1m, cullConnected true; a kernel is up 30s after it gets its GPUs
	//
	// kernels              idle after  GPU-h held  saved  saved %  busy GPU-h  wait p50  wait p95  resumed  restarted  culls
	// bound per notebook            -         4.2      -        -         0.8         -         -        -          -      -
	// elastic, no culling       never         2.5    1.7      41%         0.8  1h50m30s        2h        0          0      0
	// elastic, Suspend            15m         1.8    2.3      56%         0.8       17m       30m        2          0      3
	// elastic, Delete             15m         1.8    2.3      56%         0.8       17m       30m        0          2      3
	//
	// With no culling this cluster is too small for GPUs bound per notebook: what it holds below bound is time sessions waited for GPUs.
}
