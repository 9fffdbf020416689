package start

import (
	"fmt"
	"sort"
	"time"
)

// The goals the issue set, printed next to what was measured (benchmarks report; they do not
// assert timing on noisy machines).
const (
	goalControlPlane = 500 * time.Millisecond // control-plane overhead, p50
)

var (
	// startRuns are the starts of BenchmarkStart's last (largest) run.
	startRuns []*start
	// burstResult is BenchmarkBurst's last (largest) run.
	burstResult *burst
)

// burst is one run of BenchmarkBurst.
type burst struct {
	n       int
	runs    []*start
	errors  int
	wall    time.Duration
	cleanup time.Duration
}

// outputs are the times to first output of the kernels that printed.
func (b *burst) outputs() []time.Duration {
	var d []time.Duration
	for _, r := range b.runs {
		if r.err == nil {
			d = append(d, r.output)
		}
	}
	return d
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p+0.5)]
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }

// row is one line of a step table: when, after the POST, each start reached the step, and
// how long the step took after the one before.
type row struct {
	name  string
	since func(*start) (time.Duration, bool)
}

func stepRows(withListening bool) []row {
	at := func(s step) func(*start) (time.Duration, bool) {
		return func(r *start) (time.Duration, bool) { return r.steps[s], r.steps[s] > 0 }
	}
	rows := []row{{name: "POST answered 201 (gateway)", since: func(r *start) (time.Duration, bool) { return r.posted, true }}}
	for _, s := range []step{stepKernel, stepPod, stepScheduled, stepSandbox, stepKernelIP, stepInitDone, stepRunning} {
		rows = append(rows, row{name: stepNames[s], since: at(s)})
	}
	if withListening {
		rows = append(rows, row{name: "kernel listening (shell, hb ports)", since: func(r *start) (time.Duration, bool) { return r.listening, r.listening > 0 }})
	}
	rows = append(rows, row{name: "first output of " + cell + " (websocket)", since: func(r *start) (time.Duration, bool) { return r.output, r.output > 0 }})
	// Not on the way to the output (the gateway probes the ports itself), shown for scale.
	rows = append(rows, row{name: stepNames[stepReady], since: at(stepReady)})
	return rows
}

// printSteps prints, per step, the p50 and the high percentile of the time since the POST;
// the steps are in the order they usually happen, and "after previous" is the median of
// each start's time from the previous row's moment (negative when the steps overlap).
func printSteps(runs []*start, hi float64, withListening bool) {
	rows := stepRows(withListening)
	hiName := fmt.Sprintf("p%d", int(hi*100))
	fmt.Printf("  %-42s %9s %9s %15s\n", "step", "p50", hiName, "after previous")
	var prev func(*start) (time.Duration, bool)
	for _, rw := range rows {
		var since, delta []time.Duration
		for _, r := range runs {
			if r.err != nil {
				continue
			}
			d, ok := rw.since(r)
			if !ok {
				continue
			}
			since = append(since, d)
			if prev != nil {
				if p, ok := prev(r); ok {
					delta = append(delta, d-p)
				}
			}
		}
		if len(since) == 0 {
			fmt.Printf("  %-42s %9s %9s %15s\n", rw.name, "-", "-", "-")
			prev = rw.since
			continue
		}
		after := "-"
		if len(delta) > 0 {
			after = secs(percentile(delta, 0.5))
		}
		fmt.Printf("  %-42s %9s %9s %15s\n", rw.name, secs(percentile(since, 0.5)), secs(percentile(since, hi)), after)
		prev = rw.since
	}
}

func printStartTable() {
	if len(startRuns) == 0 {
		return
	}
	runs := startRuns
	fmt.Printf("\none kernel (python3: ipykernel on devnode), POST /api/kernels to the first output of %s sent at once, %d starts, %s\n",
		cell, len(runs), time.Now().Format(time.DateOnly))
	printSteps(runs, 0.9, true)
	var cp, kp, out, listen []time.Duration
	for _, r := range runs {
		cp, kp, out = append(cp, r.controlPlane()), append(kp, r.kernelProcess()), append(out, r.output)
		if r.listening > 0 {
			listen = append(listen, r.listening-r.steps[stepRunning])
		}
	}
	fmt.Printf("  %-42s %9s %9s   %s\n", "split", "p50", "p90", "goal")
	fmt.Printf("  %-42s %9s %9s   p50 <= %s\n", "control plane: POST -> container running", secs(percentile(cp, 0.5)), secs(percentile(cp, 0.9)), secs(goalControlPlane))
	fmt.Printf("  %-42s %9s %9s\n", "kernel process: container -> first output", secs(percentile(kp, 0.5)), secs(percentile(kp, 0.9)))
	if len(listen) > 0 {
		fmt.Printf("  %-42s %9s %9s\n", "  of which container -> kernel listening", secs(percentile(listen, 0.5)), secs(percentile(listen, 0.9)))
	}
	fmt.Printf("  %-42s %9s %9s\n", "total: POST -> first output", secs(percentile(out, 0.5)), secs(percentile(out, 0.9)))
}

func printBurstTable() {
	b := burstResult
	if b == nil {
		return
	}
	ok := b.outputs()
	fmt.Printf("\nburst: %d fake kernels started at once through the gateway, each sending %s at once, %s\n", b.n, cell, time.Now().Format(time.DateOnly))
	fmt.Printf("  %8s %8s %9s %9s %9s %9s %10s   %s\n", "kernels", "errors", "p50", "p95", "max", "wall", "clean-up", "goal")
	fmt.Printf("  %8d %8d %9s %9s %9s %9s %10s   %d concurrent starts, 0 errors\n", b.n, b.errors,
		secs(percentile(ok, 0.5)), secs(percentile(ok, 0.95)), secs(percentile(ok, 1)), secs(b.wall), secs(b.cleanup), 200)
	fmt.Println("  (p50/p95/max: POST to first output per kernel; wall: first POST to last output; clean-up: DELETE all until no JupyterKernel or pod is left)")
	printSteps(b.runs, 0.95, false)
}
