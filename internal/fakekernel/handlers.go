package fakekernel

import (
	"encoding/json"

	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// Implementation is the kernel_info_reply's implementation.
const Implementation = "fake"

// kernelInfo is the kernel_info_reply's content: a Python kernel to clients (JupyterLab picks
// its editor mode and file type from language_info), with a banner saying what it is.
var kernelInfo = mustJSON(map[string]any{
	"status":                 "ok",
	"protocol_version":       jupyter.ProtocolVersion,
	"implementation":         Implementation,
	"implementation_version": version.Version,
	"language_info": map[string]any{
		"name":               "python",
		"version":            "3",
		"mimetype":           "text/x-python",
		"file_extension":     ".py",
		"pygments_lexer":     "ipython3",
		"codemirror_mode":    map[string]any{"name": "ipython", "version": 3},
		"nbconvert_exporter": "python",
	},
	"banner":     "elastic-jupyter fake kernel, for benchmarks and tests: print(...), sleep N and arithmetic; not a Python interpreter",
	"help_links": []any{},
	"debugger":   false,
})

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // a constant above is wrong
	}
	return b
}

// shellHandlers answer the shell channel.
func (k *Kernel) shellHandlers() map[string]handler {
	h := k.commonHandlers()
	h["execute_request"] = k.executeRequest
	h["comm_open"] = k.commOpen
	h["comm_msg"] = k.ignore
	h["comm_close"] = k.ignore
	return h
}

// controlHandlers answer the control channel: what shell answers but executions and comms,
// and interrupts.
func (k *Kernel) controlHandlers() map[string]handler {
	h := k.commonHandlers()
	h["interrupt_request"] = k.interruptRequest
	return h
}

func (k *Kernel) commonHandlers() map[string]handler {
	return map[string]handler{
		"kernel_info_request": func(req *request) { k.reply(req, "kernel_info_reply", kernelInfo, nil) },
		"comm_info_request": func(req *request) {
			k.reply(req, "comm_info_reply", map[string]any{"status": "ok", "comms": map[string]any{}}, nil)
		},
		"history_request": func(req *request) {
			k.reply(req, "history_reply", map[string]any{"status": "ok", "history": []any{}}, nil)
		},
		"complete_request":    k.completeRequest,
		"inspect_request":     k.inspectRequest,
		"is_complete_request": k.isCompleteRequest,
		"shutdown_request":    k.shutdownRequest,
	}
}

func (k *Kernel) ignore(req *request) {
	k.log.Debug("ignored a message", "channel", req.channel, "msg_type", req.msg.Header.MsgType)
}

// completeRequest offers no completions, at the cursor.
func (k *Kernel) completeRequest(req *request) {
	var c struct {
		CursorPos int `json:"cursor_pos"`
	}
	if !k.decode(req, &c) {
		return
	}
	k.reply(req, "complete_reply", map[string]any{
		"status": "ok", "matches": []string{}, "cursor_start": c.CursorPos, "cursor_end": c.CursorPos, "metadata": map[string]any{},
	}, nil)
}

// inspectRequest finds nothing to show.
func (k *Kernel) inspectRequest(req *request) {
	k.reply(req, "inspect_reply", map[string]any{"status": "ok", "found": false, "data": map[string]any{}, "metadata": map[string]any{}}, nil)
}

// isCompleteRequest says whether code is a complete cell: every cell of the language is, and
// other code is answered with an echo anyway.
func (k *Kernel) isCompleteRequest(req *request) {
	k.reply(req, "is_complete_reply", map[string]any{"status": "complete"}, nil)
}

// commOpen refuses the comm as ipykernel does for a target it does not know: with a
// comm_close on iopub.
func (k *Kernel) commOpen(req *request) {
	var c struct {
		CommID     string `json:"comm_id"`
		TargetName string `json:"target_name"`
	}
	if !k.decode(req, &c) {
		return
	}
	k.log.Info("refused a comm: no comm targets", "target_name", c.TargetName)
	k.publish("comm_close", map[string]any{"comm_id": c.CommID, "data": map[string]any{}}, &req.msg.Header)
}

// interruptRequest interrupts the running execution, if any.
func (k *Kernel) interruptRequest(req *request) {
	k.Interrupt()
	k.reply(req, "interrupt_reply", map[string]any{"status": "ok"}, nil)
}

// shutdownRequest answers, publishes the answer on iopub as ipykernel does on its way out,
// and stops the kernel once iopub had time to drain (the dispatcher still publishes idle).
func (k *Kernel) shutdownRequest(req *request) {
	var c struct {
		Restart bool `json:"restart"`
	}
	if !k.decode(req, &c) {
		return
	}
	content := map[string]any{"status": "ok", "restart": c.Restart}
	k.reply(req, "shutdown_reply", content, nil)
	k.publish("shutdown_reply", content, &req.msg.Header)
	k.log.Info("shutting down", "restart", c.Restart)
	linger := k.opts.Linger
	if linger < 0 {
		linger = 0
	}
	k.stop(nil, linger)
}
