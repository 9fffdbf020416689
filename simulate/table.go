package simulate

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
)

// Setting is one run of a table: a cull policy at an idle threshold.
type Setting struct {
	// Policy is gateway.CullSuspend or gateway.CullDelete; with IdleTimeout 0 it is ignored
	// (a table's row says "").
	Policy string
	// IdleTimeout is the gateway's cullIdleTimeout; 0 is never (no culling).
	IdleTimeout time.Duration
}

func (s Setting) String() string {
	if s.IdleTimeout == 0 {
		return "no culling"
	}
	return s.Policy + " at " + short(s.IdleTimeout)
}

// DefaultThresholds are the idle thresholds `elastic-jupyter simulate` compares; 0 is never.
var DefaultThresholds = []time.Duration{5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 0}

// Plan orders a table's runs: no culling first (when a threshold is 0), then policy at each
// other threshold from the shortest, then Delete at each of deleteAt not run already.
func Plan(thresholds []time.Duration, policy string, deleteAt []time.Duration) []Setting {
	var out []Setting
	add := func(s Setting) {
		if s.IdleTimeout == 0 {
			s.Policy = ""
		}
		for _, o := range out {
			if o == s {
				return
			}
		}
		out = append(out, s)
	}
	ts := append([]time.Duration(nil), thresholds...)
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	for _, d := range ts {
		if d == 0 {
			add(Setting{})
		}
	}
	for _, d := range ts {
		if d != 0 {
			add(Setting{Policy: policy, IdleTimeout: d})
		}
	}
	for _, d := range deleteAt {
		add(Setting{Policy: gateway.CullDelete, IdleTimeout: d})
	}
	return out
}

// Options are the runs a table compares and what they share.
type Options struct {
	// Settings are the runs, one row each, in this order.
	Settings []Setting
	// CullInterval is how often the culler looks.
	CullInterval time.Duration
	// CullConnected culls kernels whose notebook is open; without it nothing in a trace is
	// culled (every kernel's notebook is open while its session lasts).
	CullConnected bool
	// GPUs is the cluster's; 0 for as many as asked for.
	GPUs int
	// Resume is how long a kernel takes from getting its GPUs to running.
	Resume time.Duration
}

// Row is one setting's run.
type Row struct {
	Setting Setting
	Result  Result
}

// Table is the comparison of a trace's runs.
type Table struct {
	Trace   *Trace
	Options Options
	// Bound is the GPU-time with GPUs bound per notebook, the same in every run.
	Bound time.Duration
	// Busy is the GPU-time of kernels running a cell, the same in every run.
	Busy time.Duration
	Rows []Row
}

// Compare runs the trace once per setting.
func Compare(t *Trace, o Options) (*Table, error) {
	if len(o.Settings) == 0 {
		return nil, errors.New("no settings to compare: give at least one (a policy at an idle threshold, or no culling)")
	}
	if o.CullInterval <= 0 {
		return nil, fmt.Errorf("cull interval %v: the culler looks every positive interval", o.CullInterval)
	}
	seen := map[Setting]bool{}
	tb := &Table{Trace: t, Options: o}
	for _, s := range o.Settings {
		if s.IdleTimeout < 0 {
			return nil, fmt.Errorf("idle threshold %v is negative: give a duration, or 0 for never", s.IdleTimeout)
		}
		policy := s.Policy
		if s.IdleTimeout == 0 {
			s.Policy, policy = "", gateway.CullSuspend // nothing is culled: the policy does not matter
		} else if s.Policy != gateway.CullSuspend && s.Policy != gateway.CullDelete {
			return nil, fmt.Errorf("cull policy %q: use %s or %s", s.Policy, gateway.CullSuspend, gateway.CullDelete)
		}
		if seen[s] {
			return nil, fmt.Errorf("%s is given twice: give each setting once", s)
		}
		seen[s] = true
		r, err := Run(t, Config{GPUs: o.GPUs, Resume: o.Resume, Settings: gateway.Settings{
			CullIdleTimeout: s.IdleTimeout, CullInterval: o.CullInterval, CullConnected: o.CullConnected, CullPolicy: policy}})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s, err)
		}
		tb.Bound, tb.Busy = r.Bound, r.Busy
		tb.Rows = append(tb.Rows, Row{Setting: s, Result: r})
	}
	return tb, nil
}

// Write prints the table: a line on the trace and the settings, then one row per run after a
// row for GPUs bound per notebook.
func (tb *Table) Write(w io.Writer) error {
	t, o := tb.Trace, tb.Options
	title := ""
	if t.Title != "" {
		title = fmt.Sprintf("%q: ", t.Title)
	}
	cluster := "as many GPUs as asked for"
	if o.GPUs > 0 {
		cluster = fmt.Sprintf("%d GPUs", o.GPUs)
		if o.GPUs == 1 {
			cluster = "1 GPU"
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s%d sessions over %s, %d trainings, tick %s; bound per notebook they need %d GPUs at once\n",
		title, len(t.Sessions), short(lifespan(t)), t.Trainings(), short(t.Tick), t.PeakGPUs())
	fmt.Fprintf(&b, "cluster: %s; culler every %s, cullConnected %v; a kernel is up %s after it gets its GPUs\n\n",
		cluster, short(o.CullInterval), o.CullConnected, short(o.Resume))
	rows := [][]string{
		{"kernels", "idle after", "GPU-h held", "saved", "saved %", "busy GPU-h", "wait p50", "wait p95", "resumed", "restarted", "culls"},
		{"bound per notebook", "-", hours(tb.Bound), "-", "-", hours(tb.Busy), "-", "-", "-", "-", "-"},
	}
	waited := false
	for _, r := range tb.Rows {
		res := r.Result
		kernels := "elastic, " + r.Setting.Policy
		if r.Setting.IdleTimeout == 0 {
			kernels = "elastic, no culling"
			waited = res.Held < res.Bound
		}
		pct := "-"
		if res.Bound > 0 {
			pct = fmt.Sprintf("%.0f%%", 100*float64(res.Saved())/float64(res.Bound))
		}
		rows = append(rows, []string{kernels, thresholdString(r.Setting.IdleTimeout),
			hours(res.Held), hours(res.Saved()), pct, hours(res.Busy),
			short(Percentile(res.Waits, 0.50)), short(Percentile(res.Waits, 0.95)),
			fmt.Sprint(res.Resumes), fmt.Sprint(res.Restarts), fmt.Sprint(res.Culls)})
	}
	writeColumns(&b, rows)
	if waited {
		fmt.Fprintf(&b, "\nWith no culling this cluster is too small for GPUs bound per notebook: what it holds below bound is time sessions waited for GPUs.\n")
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the table: %w", err)
	}
	return nil
}

// writeColumns lays rows out in columns: the first left-aligned, the others right-aligned.
func writeColumns(b *strings.Builder, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len(c))
		}
	}
	for _, r := range rows {
		for i, c := range r {
			switch {
			case i == 0:
				fmt.Fprintf(b, "%-*s", widths[i], c)
			default:
				fmt.Fprintf(b, "  %*s", widths[i], c)
			}
		}
		b.WriteByte('\n')
	}
}

// lifespan is from the first session's start to the last one's stop.
func lifespan(t *Trace) time.Duration {
	first, last := t.Sessions[0].StartTick, t.Sessions[0].StopTick
	for _, s := range t.Sessions {
		first, last = min(first, s.StartTick), max(last, s.StopTick)
	}
	return t.at(last) - t.at(first)
}

// Percentile is the nearest-rank p-th percentile of ds (0 for none).
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(p*float64(len(s)) - 1e-9))
	return s[min(max(rank, 1), len(s))-1]
}

func thresholdString(d time.Duration) string {
	if d == 0 {
		return "never"
	}
	return short(d)
}

func hours(d time.Duration) string { return fmt.Sprintf("%.1f", d.Hours()) }

// short writes a duration without its zero parts: 1h30m, 2h, 45s, 0s.
func short(d time.Duration) string {
	d = d.Round(time.Second)
	if d == 0 {
		return "0s"
	}
	var b strings.Builder
	if d < 0 {
		b.WriteByte('-')
		d = -d
	}
	h, m, s := d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	if s > 0 {
		fmt.Fprintf(&b, "%ds", s)
	}
	return b.String()
}
