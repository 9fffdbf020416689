package fakekernel

import (
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// flushAt is how much stdout an execution buffers before publishing it mid-statement list.
// Like ipykernel, output is coalesced: it is published before a sleep and at the end.
const flushAt = 64 << 10

// errStopped ends an execution because the kernel stops; it gets no reply.
var errStopped = &pyError{name: "fake kernel stopped"}

// execution is one execute_request being run; it is the language's runtime.
type execution struct {
	k           *Kernel
	req         *request
	interrupted chan struct{}
	once        sync.Once
	stdout      strings.Builder
}

func (e *execution) interrupt() { e.once.Do(func() { close(e.interrupted) }) }

func (e *execution) write(s string) {
	e.stdout.WriteString(s)
	if e.stdout.Len() >= flushAt {
		e.flush()
	}
}

// flush publishes the buffered stdout as one stream message.
func (e *execution) flush() {
	if e.stdout.Len() == 0 {
		return
	}
	e.k.publish("stream", map[string]string{"name": "stdout", "text": e.stdout.String()}, &e.req.msg.Header)
	e.stdout.Reset()
}

func (e *execution) sleep(d time.Duration) *pyError {
	e.flush()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-e.interrupted:
		return raise("KeyboardInterrupt", "")
	case <-e.k.ctx.Done():
		return errStopped
	}
}

func (e *execution) check() *pyError {
	select {
	case <-e.interrupted:
		return raise("KeyboardInterrupt", "")
	case <-e.k.ctx.Done():
		return errStopped
	default:
		return nil
	}
}

// Interrupt interrupts the running execution as SIGINT interrupts Python: it ends with
// KeyboardInterrupt. With nothing running it does nothing.
func (k *Kernel) Interrupt() {
	k.mu.Lock()
	e := k.running
	k.mu.Unlock()
	if e == nil {
		k.log.Debug("interrupt with nothing running")
		return
	}
	k.log.Info("interrupting the execution", "msg_id", e.req.msg.Header.MsgID)
	e.interrupt()
}

// executeContent is the part of execute_request's content the fake kernel uses.
type executeContent struct {
	Code            string         `json:"code"`
	Silent          bool           `json:"silent"`
	StoreHistory    *bool          `json:"store_history"`
	UserExpressions map[string]any `json:"user_expressions"`
}

// executeRequest runs a cell: execute_input, the outputs (stream, execute_result or error),
// then execute_reply. A silent request publishes neither execute_input nor results, and does
// not count.
func (k *Kernel) executeRequest(req *request) {
	var c executeContent
	if !k.decode(req, &c) {
		return
	}
	counts := !c.Silent && (c.StoreHistory == nil || *c.StoreHistory)
	e := &execution{k: k, req: req, interrupted: make(chan struct{})}
	k.mu.Lock()
	// Registered before execute_input is published, so an interrupt sent after a client saw
	// execute_input always finds this execution.
	k.running = e
	if counts {
		k.count++
	}
	count := k.count
	k.mu.Unlock()
	defer func() {
		k.mu.Lock()
		k.running = nil
		k.mu.Unlock()
	}()

	parent := &req.msg.Header
	started := jupyter.Now()
	if !c.Silent {
		k.publish("execute_input", map[string]any{"code": c.Code, "execution_count": count}, parent)
	}
	var result *string
	var perr *pyError
	if prog, err := parse(c.Code); err != nil {
		// Not the fake kernel's language (errNotFake): the code itself is the result.
		k.log.Debug("echoing code", "reason", err.Error())
		echo := strings.TrimSpace(c.Code)
		result = &echo
	} else {
		var v *value
		if v, perr = prog.run(e); v != nil {
			s := v.repr()
			result = &s
		}
	}
	e.flush()
	if perr == errStopped {
		return
	}

	metadata := map[string]any{"started": started, "dependencies_met": true, "engine": k.session, "status": "ok"}
	if perr != nil {
		traceback := []string{
			"Traceback (most recent call last):",
			fmt.Sprintf("  Cell In[%d], line %d", count, perr.line),
			perr.Error(),
		}
		if !c.Silent {
			k.publish("error", map[string]any{"ename": perr.name, "evalue": perr.value, "traceback": traceback}, parent)
		}
		metadata["status"] = "error"
		k.reply(req, "execute_reply", map[string]any{
			"status": "error", "execution_count": count, "ename": perr.name, "evalue": perr.value,
			"traceback": traceback, "user_expressions": map[string]any{}, "payload": []any{},
		}, metadata)
		return
	}
	if result != nil && !c.Silent {
		k.publish("execute_result", map[string]any{
			"execution_count": count, "data": map[string]string{"text/plain": *result}, "metadata": map[string]any{},
		}, parent)
	}
	k.reply(req, "execute_reply", map[string]any{
		"status": "ok", "execution_count": count, "user_expressions": userExpressions(c.UserExpressions), "payload": []any{},
	}, metadata)
}

// userExpressions answers each user expression: the value of an expression of the language,
// its exception, or None for anything else (so clients' silent helper calls keep working).
func userExpressions(exprs map[string]any) map[string]any {
	out := make(map[string]any, len(exprs))
	for name, raw := range exprs {
		repr := "None"
		src, _ := raw.(string) // not a string: no expression, None
		if p, err := parse(src); err == nil && len(p.stmts) == 1 && p.stmts[0].kind == stmtExpr {
			v, perr := p.stmts[0].args[0].eval()
			if perr != nil {
				out[name] = map[string]any{"status": "error", "ename": perr.name, "evalue": perr.value, "traceback": []string{perr.Error()}}
				continue
			}
			repr = v.repr()
		}
		out[name] = map[string]any{"status": "ok", "data": map[string]string{"text/plain": repr}, "metadata": map[string]any{}}
	}
	return out
}
