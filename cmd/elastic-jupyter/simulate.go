package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
	"github.com/elastic-jupyter/elastic-jupyter/simulate"
)

func init() {
	register("simulate", "replay a notebook session trace against the culling rules: GPU-hours held and saved per idle threshold",
		func(_ context.Context, args []string) error { return runSimulate(args, os.Stdout) })
}

func runSimulate(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	trace := fs.String("trace", "", "notebook session trace: a NotebookOS workload template (JSON), e.g. examples/traces/synthetic-sensei.json (required)")
	gpus := fs.Int("gpus", 0, "the cluster's GPUs, which kernels wait for first come, first served (0: as many as asked for)")
	thresholds := fs.String("thresholds", "5m,15m,30m,60m,never", "idle thresholds (cullIdleTimeout) to compare, comma-separated; never: no culling")
	policy := fs.String("policy", gateway.CullSuspend, "cullPolicy at each threshold: Suspend or Delete")
	deleteAt := fs.String("delete-at", "15m", "idle thresholds to add a Delete row at, comma-separated (none: no Delete row)")
	interval := fs.Duration("cull-interval", time.Minute, "cullInterval: how often the culler looks")
	connected := fs.Bool("cull-connected", true, "cullConnected: also cull kernels whose notebook is open (the gateway's default with Suspend; without it no kernel of a trace is culled)")
	resume := fs.Duration("resume", simulate.DefaultResume, "how long a kernel takes from getting its GPUs to running a cell (a start, a resume, a fresh start after Delete)")
	tick := fs.Duration("tick", 0, "length of a trace tick (default: the trace's tick_seconds, else 60s as in NotebookOS)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: simulate takes flags only (--trace FILE)", fs.Args())
	}
	if *trace == "" {
		return errors.New("--trace is required: give a NotebookOS workload template, e.g. --trace examples/traces/synthetic-sensei.json")
	}
	if *gpus < 0 {
		return fmt.Errorf("--gpus %d: give the cluster's GPU count, or 0 for as many as asked for", *gpus)
	}
	ts, err := parseThresholds("--thresholds", *thresholds, false)
	if err != nil {
		return err
	}
	ds, err := parseThresholds("--delete-at", *deleteAt, true)
	if err != nil {
		return err
	}
	p, err := parsePolicy(*policy)
	if err != nil {
		return err
	}
	if *interval <= 0 {
		return fmt.Errorf("--cull-interval %v: give a positive duration, e.g. 60s", *interval)
	}
	if *resume < 0 {
		return fmt.Errorf("--resume %v: give a duration, 0 or more, e.g. 5s", *resume)
	}
	if *tick < 0 {
		return fmt.Errorf("--tick %v: give a positive duration, e.g. 60s, or leave it out for the trace's", *tick)
	}
	tr, err := simulate.Load(*trace)
	if err != nil {
		return fmt.Errorf("--trace: %w", err)
	}
	if *tick > 0 {
		tr.Tick = *tick
	}
	if *gpus > 0 {
		for _, s := range tr.Sessions {
			if s.GPUs > *gpus {
				return fmt.Errorf("--gpus %d: session %q needs %d GPUs at once; give --gpus %d or more", *gpus, s.ID, s.GPUs, s.GPUs)
			}
		}
	}
	tb, err := simulate.Compare(tr, simulate.Options{
		Settings:     simulate.Plan(ts, p, ds),
		CullInterval: *interval, CullConnected: *connected, GPUs: *gpus, Resume: *resume,
	})
	if err != nil {
		return fmt.Errorf("simulating %s: %w", *trace, err)
	}
	return tb.Write(out)
}

// parseThresholds reads a comma-separated list of durations; never (or 0) is no culling.
func parseThresholds(flagName, v string, allowNone bool) ([]time.Duration, error) {
	if allowNone && (strings.TrimSpace(v) == "" || strings.TrimSpace(v) == "none") {
		return nil, nil
	}
	var out []time.Duration
	seen := map[time.Duration]bool{}
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		var d time.Duration
		switch f {
		case "":
			continue
		case "never", "0":
			if allowNone {
				return nil, fmt.Errorf("%s %q: never is not a threshold to delete at: give durations such as 15m, or none", flagName, v)
			}
		default:
			var err error
			if d, err = time.ParseDuration(f); err != nil || d < 0 {
				return nil, fmt.Errorf("%s: %q is not an idle threshold: give durations such as 5m,15m,1h (or never)", flagName, f)
			}
		}
		if seen[d] {
			return nil, fmt.Errorf("%s: %q is given twice: give each threshold once", flagName, f)
		}
		seen[d] = true
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s is empty: give idle thresholds such as 5m,15m,1h,never", flagName)
	}
	return out, nil
}

func parsePolicy(v string) (string, error) {
	for _, p := range []string{gateway.CullSuspend, gateway.CullDelete} {
		if v == p {
			return p, nil
		}
		if strings.EqualFold(v, p) {
			return "", fmt.Errorf("--policy %q: write %s", v, p)
		}
	}
	return "", fmt.Errorf("--policy %q: use %s (the kernel comes back on the next cell) or %s (it ends)", v, gateway.CullSuspend, gateway.CullDelete)
}
