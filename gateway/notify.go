package gateway

import (
	"strings"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// What the gateway itself tells a notebook, on the notebook's websocket, about a kernel the
// kernel cannot speak for: that it is starting and what it waits for, that it was suspended
// or resumed, that it could not start. Lines go out as iopub stderr streams whose parent is a
// request of that notebook, so JupyterLab and Notebook show them in the cell that waits (or,
// for a suspension, under the cell that ran last).

// notices remembers what one bridge has told its notebook, so each thing is told once.
type notices struct {
	comingUp   bool   // the "starting" status went out for the current start or resume
	said       string // the last waiting line
	saidTo     string // the msg_id it went to
	suspendSeq uint64
	resumeSeq  uint64
	refusalSeq uint64
	dead       bool
}

// tellComingUp says the kernel is starting (a status) and, each time it changes, what it
// waits for, to the held request a user looks at: the first held cell, else the first held
// message.
func (n *notices) tellComingUp(b *bridge, v kernelView) {
	n.dead = false
	if !n.comingUp {
		n.comingUp = true
		// Not for a restart the client asked for: a "restarting" status tells JupyterLab
		// the server restarted a kernel that died, and it says so in a dialog.
		if v.phase != phaseRestarting {
			b.sendStatus(stateStarting, nil)
		}
	}
	target := b.noteTarget(false)
	if target == nil || v.reason == "" || (v.reason == n.said && target.MsgID == n.saidTo) {
		return
	}
	if n.said != "" && target.MsgID == n.saidTo && !notable(v.reason) {
		return // a step of a start that goes as it should: the model and the kernel's status say it
	}
	n.said, n.saidTo = v.reason, target.MsgID
	b.sendStderr(v.reason, target)
}

// notable reports whether what a starting kernel waits for is worth a line in the notebook
// beyond the first: a wait the user may want to act on (for a GPU, for a node the scheduler
// cannot find) or a long step (pulling an image). The routine steps of a start (creating the
// pod, scheduling it, starting the container) are not.
func notable(reason string) bool {
	switch {
	case strings.HasPrefix(reason, "waiting for a GPU: ") && !strings.HasSuffix(reason, "in the queue"):
		return true
	case strings.HasPrefix(reason, "waiting for a node: "), strings.HasPrefix(reason, "pulling image "):
		return true
	}
	return false
}

// tellSuspended tells the notebook, under the cell that ran last, that the kernel was
// suspended and what the next cell brings back.
func (n *notices) tellSuspended(b *bridge) {
	n.comingUp, n.said = false, ""
	note, seq, _, _ := b.k.notes()
	if seq == n.suspendSeq {
		return
	}
	n.suspendSeq = seq
	if target := b.noteTarget(true); target != nil && note != "" {
		b.sendStderr(note, target)
	}
}

// tellResumed tells the cell that brought a suspended kernel back what came back with it.
func (b *bridge) tellResumed(n *notices) {
	n.comingUp, n.said = false, ""
	_, _, note, seq := b.k.notes()
	if seq == n.resumeSeq {
		return
	}
	n.resumeSeq = seq
	if target := b.firstHeld("execute_request"); target != nil && note != "" {
		b.sendStderr(note, target)
	}
}

// tellDead says once that the kernel is dead (the held requests got the reason already).
func (n *notices) tellDead(b *bridge, _ string) {
	n.comingUp, n.said = false, ""
	if n.dead {
		return
	}
	n.dead = true
	b.sendStatus(stateDead, nil)
}

// noteTarget is the request a note is shown under: the first held cell, else (when late is
// set, for notes about a kernel that ran) the last cell delivered, else the first held message.
func (b *bridge) noteTarget(late bool) *jupyter.Header {
	if h := b.firstHeld("execute_request"); h != nil {
		return h
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if late {
		return b.lastExec
	}
	if len(b.held) > 0 {
		h := b.held[0].Header
		return &h
	}
	return nil
}

// firstHeld is the header of the first held message of msgType, or nil.
func (b *bridge) firstHeld(msgType string) *jupyter.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, m := range b.held {
		if m.Header.MsgType == msgType {
			h := m.Header
			return &h
		}
	}
	return nil
}

// gatewayMessage makes a message from the gateway on channel.
func (b *bridge) gatewayMessage(channel, msgType string, content any, parent *jupyter.Header) *jupyter.Message {
	m, err := jupyter.NewMessage(msgType, b.k.id, "gateway", content, parent)
	if err != nil {
		return nil // the contents here always encode
	}
	m.Channel = channel
	return m
}

func (b *bridge) send(m *jupyter.Message) {
	if m != nil {
		_ = b.write(m) // a failed write closes the websocket's reader too
	}
}

// sendStatus tells the client the kernel's execution state (on iopub), for states the gateway
// knows before the kernel does: starting, dead.
func (b *bridge) sendStatus(state string, parent *jupyter.Header) {
	b.send(b.gatewayMessage(jupyter.ChannelIOPub, "status", map[string]string{"execution_state": state}, parent))
}

// sendStderr shows line in the output of the cell whose request is parent.
func (b *bridge) sendStderr(line string, parent *jupyter.Header) {
	b.send(b.gatewayMessage(jupyter.ChannelIOPub, "stream", map[string]string{"name": "stderr", "text": line + "\n"}, parent))
}

// failRequest answers a request the kernel will never see because it cannot run.
func (b *bridge) failRequest(m *jupyter.Message, reason string) {
	b.replyError(m, "KernelStartFailed", reason)
}

// replyError answers request m with an error, as the kernel would have: for a cell, an
// error output and an execute_reply between busy and idle; for another request, its reply
// with status error. Messages that are not requests (input replies, comm messages) get none.
func (b *bridge) replyError(m *jupyter.Message, ename, evalue string) {
	typ := m.Header.MsgType
	if !strings.HasSuffix(typ, "_request") || m.Channel == jupyter.ChannelStdin {
		return
	}
	parent := m.Header
	errContent := map[string]any{"status": "error", "ename": ename, "evalue": evalue, "traceback": []string{ename + ": " + evalue}}
	if typ == "execute_request" {
		b.sendStatus(stateBusy, &parent)
		b.send(b.gatewayMessage(jupyter.ChannelIOPub, "error", map[string]any{"ename": ename, "evalue": evalue, "traceback": []string{ename + ": " + evalue}}, &parent))
		reply := map[string]any{"execution_count": nil, "user_expressions": map[string]any{}, "payload": []any{}}
		for k, v := range errContent {
			reply[k] = v
		}
		b.send(b.gatewayMessage(m.Channel, "execute_reply", reply, &parent))
		b.sendStatus(stateIdle, &parent)
		return
	}
	b.send(b.gatewayMessage(m.Channel, strings.TrimSuffix(typ, "_request")+"_reply", errContent, &parent))
}

// answerWhileSuspended answers, without resuming the kernel, the held requests at the front
// of the queue that the gateway can answer for a suspended kernel: kernel_info_request (from
// the reply the kernel gave when it last ran) and comm_info_request (a suspended kernel has no
// comms). A notebook that opens or reconnects sends these first; they must not take a GPU.
func (b *bridge) answerWhileSuspended() {
	info := b.k.cachedKernelInfo()
	for {
		b.mu.Lock()
		if len(b.held) == 0 {
			b.mu.Unlock()
			return
		}
		m := b.held[0]
		var reply any
		switch {
		case m.Header.MsgType == "kernel_info_request" && info != nil:
			reply = info
		case m.Header.MsgType == "comm_info_request":
			reply = map[string]any{"status": "ok", "comms": map[string]any{}}
		default:
			b.mu.Unlock()
			return
		}
		b.held = b.held[1:]
		b.mu.Unlock()
		parent := m.Header
		b.sendStatus(stateBusy, &parent)
		b.send(b.gatewayMessage(m.Channel, strings.TrimSuffix(m.Header.MsgType, "_request")+"_reply", reply, &parent))
		b.sendStatus(stateIdle, &parent)
	}
}
