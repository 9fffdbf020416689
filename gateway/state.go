package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

// A kernel whose kernelspec keeps state has its user's variables saved before its pod is
// freed, and loaded into the new pod before the cell that resumed it runs. The kernel does the
// work, through the launcher's Python helper, called as a silent execute (no output, no
// history, the execution count unmoved); a save that fails or takes too long never keeps the
// GPU: the kernel is suspended anyway and the notebook is told what was lost.

// Time limits of the state helper's calls.
const (
	stateSaveTimeout = 2 * time.Minute
	stateLoadTimeout = 5 * time.Minute
)

// StateLocation is where a kernel keeps its variables across a suspension.
type StateLocation struct {
	// Helper is the state helper's path inside the kernel.
	Helper string
	// File is the snapshot's path inside the kernel.
	File string
	// MaxBytes bounds the snapshot (0: no bound).
	MaxBytes int64
	// Saved is true while a snapshot of an earlier suspension waits there.
	Saved bool
	// Message is what the last save or load said (for a gateway that restarted since).
	Message string
}

// StateOutcome is what a save or load left, for the provisioner to record.
type StateOutcome struct {
	// Saved is true when a snapshot waits on the volume.
	Saved bool
	// Bytes is the snapshot's size.
	Bytes int64
	// Message is what the notebook was told.
	Message string
}

// saveState saves the kernel's variables before it is suspended, where its kernelspec keeps
// state, and returns what the next cell brings back, for the suspension's note.
func (k *kernel) saveState(ctx context.Context, info *jupyter.ConnectionInfo) string {
	loc, ok := k.g.prov.State(ctx, k.id)
	if !ok {
		return "(a fresh interpreter: this kernel's kernelspec keeps no variables; its spec.state names a volume to keep them)"
	}
	ctx, cancel := context.WithTimeout(ctx, stateSaveTimeout)
	defer cancel()
	r, err := stateCall(ctx, info, launcher.StateSaveExpr(loc.Helper, loc.File, loc.MaxBytes))
	if err == nil && !r.OK {
		err = fmt.Errorf("%s", r.Error)
	}
	if err != nil {
		k.g.log.Warn("saving the kernel's variables failed; suspending anyway", "kernel", k.id, "err", err.Error())
		msg := "a fresh interpreter: its variables could not be saved (" + err.Error() + ")"
		k.recordState(ctx, StateOutcome{Message: msg})
		return "(" + msg + ")"
	}
	k.g.log.Info("saved the kernel's variables", "kernel", k.id, "kept", len(r.Kept), "not_kept", len(r.NotKept), "bytes", r.Bytes, "seconds", r.Seconds)
	msg := "with its variables"
	if len(r.NotKept) > 0 {
		msg = fmt.Sprintf("with %d of its variables (not kept: %s)", len(r.Kept), describeVars(r.NotKept))
	}
	k.recordState(ctx, StateOutcome{Saved: true, Bytes: r.Bytes, Message: "saved " + msg})
	return msg
}

// restoreState loads the variables saved at the suspension into the resumed kernel (or, for a
// restart, drops them), and records the note for the cell that resumed it.
func (k *kernel) restoreState(ctx context.Context, info *jupyter.ConnectionInfo) {
	k.mu.Lock()
	fresh := k.freshResume
	k.freshResume = false
	k.mu.Unlock()
	note := k.loadState(ctx, info, fresh)
	k.mu.Lock()
	k.resumeNote = note
	k.resumeSeq++
	k.mu.Unlock()
}

func (k *kernel) loadState(ctx context.Context, info *jupyter.ConnectionInfo, fresh bool) string {
	loc, ok := k.g.prov.State(ctx, k.id)
	if !ok {
		return "resumed on a new pod: a fresh interpreter (this kernel's kernelspec keeps no variables across a suspension)"
	}
	ctx, cancel := context.WithTimeout(ctx, stateLoadTimeout)
	defer cancel()
	if fresh {
		if _, err := stateCall(ctx, info, launcher.StateRemoveExpr(loc.Helper, loc.File)); err != nil {
			k.g.log.Warn("removing the saved variables of a restarted kernel", "kernel", k.id, "err", err.Error())
			return "restarted on a new pod"
		}
		k.recordState(ctx, StateOutcome{Message: "restarted: the saved variables were dropped"})
		return "restarted on a new pod: a fresh interpreter"
	}
	if !loc.Saved {
		if strings.HasPrefix(loc.Message, "a fresh interpreter") {
			return "resumed on a new pod: " + loc.Message
		}
		return "resumed on a new pod: a fresh interpreter (no variables were saved)"
	}
	r, err := stateCall(ctx, info, launcher.StateLoadExpr(loc.Helper, loc.File))
	if err == nil && !r.OK {
		if r.Missing {
			k.recordState(ctx, StateOutcome{Message: "the snapshot was missing at the resume"})
			return "resumed on a new pod: a fresh interpreter (the saved variables were not found)"
		}
		err = fmt.Errorf("%s", r.Error)
	}
	if err != nil {
		k.g.log.Warn("loading the kernel's variables failed", "kernel", k.id, "err", err.Error())
		return "resumed on a new pod, but its variables could not be restored: " + err.Error()
	}
	k.g.log.Info("restored the kernel's variables", "kernel", k.id, "restored", len(r.Restored), "bytes", r.Bytes, "seconds", r.Seconds)
	note := fmt.Sprintf("resumed: restored %d variables (%s)", len(r.Restored), humanBytes(r.Bytes))
	if len(r.Restored) == 1 {
		note = fmt.Sprintf("resumed: restored 1 variable (%s)", humanBytes(r.Bytes))
	}
	if names := listNames(r.Restored); names != "" {
		note += ": " + names
	}
	if lost := append(append([]launcher.StateVar(nil), r.NotKept...), r.Failed...); len(lost) > 0 {
		note += "; not kept: " + describeVars(lost)
	}
	k.recordState(ctx, StateOutcome{Message: note})
	return note
}

// recordState tells the provisioner what a save or load left (best effort, logged).
func (k *kernel) recordState(ctx context.Context, o StateOutcome) {
	if err := k.g.prov.RecordState(ctx, k.id, o); err != nil {
		k.g.log.Warn("recording the kernel's saved state", "kernel", k.id, "err", err.Error())
	}
}

// stateCall runs one call of the state helper in the kernel and returns its report.
func stateCall(ctx context.Context, info *jupyter.ConnectionInfo, expr string) (*launcher.StateReport, error) {
	c, err := kernelconn.Dial(ctx, info, kernelconn.Options{Username: "gateway"})
	if err != nil {
		return nil, fmt.Errorf("connecting to the kernel: %w", err)
	}
	defer c.Close()
	m, err := c.NewMessage("execute_request", launcher.StateExecuteContent(expr))
	if err != nil {
		return nil, err
	}
	reply, err := c.Request(ctx, jupyter.ChannelShell, m)
	if err != nil {
		return nil, err
	}
	var content struct {
		Status          string                     `json:"status"`
		EName           string                     `json:"ename"`
		EValue          string                     `json:"evalue"`
		UserExpressions map[string]json.RawMessage `json:"user_expressions"`
	}
	if err := reply.DecodeContent(&content); err != nil {
		return nil, err
	}
	if content.Status != "ok" {
		return nil, fmt.Errorf("the kernel refused the state helper's call: %s: %s", content.EName, content.EValue)
	}
	raw, ok := content.UserExpressions[launcher.StateExpressionKey]
	if !ok {
		return nil, fmt.Errorf("the kernel's reply has no result of the state helper")
	}
	return launcher.ParseStateUserExpression(raw)
}

// describeVars lists variables with why they were not kept: "model (a CUDA tensor, re-run the
// cell that made it), f (an open file)"; long lists are cut.
func describeVars(vars []launcher.StateVar) string {
	const most = 8
	var parts []string
	for i, v := range vars {
		if i == most {
			parts = append(parts, fmt.Sprintf("and %d more", len(vars)-most))
			break
		}
		if v.Why != "" {
			parts = append(parts, fmt.Sprintf("%s (%s)", v.Name, v.Why))
		} else {
			parts = append(parts, v.Name)
		}
	}
	return strings.Join(parts, ", ")
}

// listNames lists a few names ("x, y, model"), or says how many more there are.
func listNames(names []string) string {
	const most = 8
	if len(names) > most {
		return strings.Join(names[:most], ", ") + fmt.Sprintf(" and %d more", len(names)-most)
	}
	return strings.Join(names, ", ")
}

// humanBytes writes n as "41 MiB", "512 KiB", "12 B".
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 10<<20:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
