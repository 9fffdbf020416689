package launcher

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The kernel-state helper (state/elastic_jupyter_state.py) keeps a kernel's variables across a
// suspend: before the pod is deleted the gateway has the kernel save its user namespace to a
// snapshot file, and the kernel in the next pod loads it. Install puts the helper next to the
// launcher; the gateway runs it with an execute_request whose only work is a user expression
// (StateExecuteContent), built here so that no caller writes Python.

//go:embed state/elastic_jupyter_state.py
var stateHelper []byte

const (
	// StateModuleFile is the helper's file name.
	StateModuleFile = "elastic_jupyter_state.py"
	// StateHelperFile is where Install puts the helper, relative to the launcher's mount (the
	// parent of the install directory): /opt/elastic-jupyter/lib/elastic_jupyter_state.py.
	StateHelperFile = "lib/" + StateModuleFile
	// StateFileSuffix ends every snapshot's file name (StateFileName).
	StateFileSuffix = ".state"
	// StateTempInfix follows the snapshot's file name in the temp files the helper writes
	// before renaming: "<id>.state.tmp-<random>", in the snapshot's directory.
	StateTempInfix = ".tmp-"
	// DefaultStateDir is the suggested directory of snapshots in a kernel pod.
	DefaultStateDir = "/var/lib/elastic-jupyter/state"
	// DefaultStateMaxBytes is the suggested snapshot size limit (256 MiB).
	DefaultStateMaxBytes int64 = 256 << 20
	// StateExpressionKey is the user_expressions key of the helper's call.
	StateExpressionKey = "ej"
)

// The values of StateReport.Op.
const (
	StateOpSave   = "save"
	StateOpLoad   = "load"
	StateOpRemove = "remove"
)

// StateHelper returns the helper's Python source.
func StateHelper() []byte { return append([]byte(nil), stateHelper...) }

// StateHelperInstallPath is where Install(installDir) writes the helper:
// installDir/../StateHelperFile.
func StateHelperInstallPath(installDir string) string {
	return filepath.Join(filepath.Dir(filepath.Clean(installDir)), filepath.FromSlash(StateHelperFile))
}

// StateFileName is the name of kernel id's snapshot file: "<id>.state".
func StateFileName(id string) string { return id + StateFileSuffix }

// CheckKernelID refuses ids that would not name a file inside the state directory.
func CheckKernelID(id string) error {
	if id == "" || id == "." || id == ".." || strings.HasPrefix(id, ".") || strings.ContainsAny(id, "/\\\x00") {
		return fmt.Errorf("kernel id %q cannot name a state file", id)
	}
	return nil
}

// StateSaveExpr is the user expression that saves the kernel's namespace to statePath, keeping
// at most maxBytes (<= 0: no limit), with the helper at helperPath (in the kernel's pod).
func StateSaveExpr(helperPath, statePath string, maxBytes int64) string {
	return stateCall(helperPath, "save", PyQuote(statePath), strconv.FormatInt(maxBytes, 10))
}

// StateSaveExprWith is StateSaveExpr with the serializer forced: "dill" or "pickle" (tests).
func StateSaveExprWith(helperPath, statePath string, maxBytes int64, serializer string) string {
	return stateCall(helperPath, "save", PyQuote(statePath), strconv.FormatInt(maxBytes, 10), PyQuote(serializer))
}

// StateLoadExpr is the user expression that restores the snapshot at statePath and deletes it.
func StateLoadExpr(helperPath, statePath string) string {
	return stateCall(helperPath, "load", PyQuote(statePath))
}

// StateRemoveExpr is the user expression that deletes the snapshot at statePath, if any.
func StateRemoveExpr(helperPath, statePath string) string {
	return stateCall(helperPath, "remove", PyQuote(statePath))
}

func stateCall(helperPath, fn string, args ...string) string {
	return "__import__('runpy').run_path(" + PyQuote(helperPath) + ")['" + fn + "'](" + strings.Join(args, ", ") + ")"
}

// StateExecuteContent is the content of the execute_request that evaluates expr (one of the
// State*Expr) without a trace in the notebook: no code, silent (the execution count does not
// move, nothing is broadcast), no history. The reply's user_expressions[StateExpressionKey]
// holds the result: ParseStateUserExpression reads it.
func StateExecuteContent(expr string) map[string]any {
	return map[string]any{
		"code": "", "silent": true, "store_history": false, "allow_stdin": false, "stop_on_error": false,
		"user_expressions": map[string]string{StateExpressionKey: expr},
	}
}

// PyQuote returns s as a Python string literal (ASCII only). Bytes that are not UTF-8 become
// the surrogates Python's os.fsdecode gives them, so open() in the kernel finds the same file.
func PyQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			fmt.Fprintf(&b, "\\udc%02x", s[i])
			i++
			continue
		}
		i += size
		switch {
		case r == '\\' || r == '\'':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", r)
		case r < 0x7f:
			b.WriteRune(r)
		case r <= 0xffff:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			fmt.Fprintf(&b, "\\U%08x", r)
		}
	}
	b.WriteByte('\'')
	return b.String()
}

// StateVar is one variable of a report: kept (Name, Type, Bytes), not kept (Name, Type, Why,
// and Bytes when it was over the limit) or failed to load (Name, Why).
type StateVar struct {
	Name  string `json:"name"`
	Type  string `json:"type,omitempty"`
	Bytes int64  `json:"bytes,omitempty"`
	Why   string `json:"why,omitempty"`
}

// StateReport is what save, load and remove report (docs/contracts.md, "Kernel state").
type StateReport struct {
	OK bool   `json:"ok"`
	Op string `json:"op"`
	// Error says why the operation failed (OK false); Missing is true when load found no
	// snapshot.
	Error   string `json:"error,omitempty"`
	Missing bool   `json:"missing,omitempty"`
	Path    string `json:"path,omitempty"`
	// Bytes is the snapshot's size (save, load).
	Bytes      int64  `json:"bytes,omitempty"`
	Serializer string `json:"serializer,omitempty"`
	// Kept (save) are the variables in the snapshot; NotKept (save, and load from the
	// snapshot) those left out, with why; Restored (load) the variables back in the namespace;
	// Failed (load) those that were kept but did not load, and modules that did not import.
	Kept     []StateVar `json:"kept,omitempty"`
	NotKept  []StateVar `json:"not_kept,omitempty"`
	Restored []string   `json:"restored,omitempty"`
	Failed   []StateVar `json:"failed,omitempty"`
	// Modules are the names bound to modules: recorded by save, imported again by load.
	Modules []string `json:"modules,omitempty"`
	// ExecutionCount is the number the next cell gets (saved, and restored by load).
	ExecutionCount int `json:"execution_count,omitempty"`
	// Cwd is the working directory load went back to (empty: it did not exist).
	Cwd string `json:"cwd,omitempty"`
	// Removed (remove) is whether there was a snapshot to delete.
	Removed bool    `json:"removed,omitempty"`
	Seconds float64 `json:"seconds"`
}

// ParseStateReport parses the text/plain of a helper call's result.
func ParseStateReport(textPlain string) (*StateReport, error) {
	var r StateReport
	if err := json.Unmarshal([]byte(textPlain), &r); err != nil {
		return nil, fmt.Errorf("the state helper's report is not JSON (%.80q): %w", textPlain, err)
	}
	switch r.Op {
	case StateOpSave, StateOpLoad, StateOpRemove:
	default:
		return nil, fmt.Errorf("the state helper's report has op %q", r.Op)
	}
	if !r.OK && r.Error == "" {
		r.Error = "the state helper failed without saying why"
	}
	return &r, nil
}

// ParseStateUserExpression reads the helper's report from the execute_reply's
// user_expressions[StateExpressionKey]; an error when the expression raised (the helper is
// missing, for example) or the report is malformed.
func ParseStateUserExpression(raw json.RawMessage) (*StateReport, error) {
	var v struct {
		Status string            `json:"status"`
		Data   map[string]string `json:"data"`
		EName  string            `json:"ename"`
		EValue string            `json:"evalue"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("decoding the state helper's user expression: %w", err)
	}
	if v.Status != "ok" {
		return nil, fmt.Errorf("the state helper's call failed in the kernel: %s: %s", v.EName, v.EValue)
	}
	text, ok := v.Data["text/plain"]
	if !ok {
		return nil, errors.New("the state helper's result has no text/plain")
	}
	return ParseStateReport(text)
}

// RemoveState deletes kernel id's snapshot in dir and its leftover temp files, for when no
// kernel runs; it returns the paths it deleted (none is not an error).
func RemoveState(dir, id string) ([]string, error) {
	if err := CheckKernelID(id); err != nil {
		return nil, err
	}
	name := StateFileName(id)
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the state directory: %w", err)
	}
	var removed []string
	for _, e := range entries {
		if e.Name() != name && !strings.HasPrefix(e.Name(), name+StateTempInfix) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return removed, fmt.Errorf("removing %s: %w", p, err)
		}
		removed = append(removed, p)
	}
	return removed, nil
}
