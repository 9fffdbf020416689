package kernelconn

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// WaitIOPub makes sure the iopub subscription is live: a SUB socket misses what the kernel
// publishes before the subscription takes effect, so it sends kernel_info_request on shell
// until iopub shows traffic. Call it before consuming Messages: it consumes (and drops) what
// arrives meanwhile.
func (c *Conn) WaitIOPub(ctx context.Context) error {
	nudges := map[string]bool{}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	nudge := func() error {
		m, err := c.NewMessage("kernel_info_request", nil)
		if err != nil {
			return err
		}
		nudges[m.Header.MsgID] = true
		return c.Send(jupyter.ChannelShell, m)
	}
	if err := nudge(); err != nil {
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for iopub: %w", ctx.Err())
		case <-tick.C:
			if err := nudge(); err != nil {
				return err
			}
		case m, ok := <-c.out:
			if !ok {
				return ErrClosed
			}
			if m.Channel == jupyter.ChannelIOPub {
				// Drain the rest of the nudges' traffic briefly, then report live.
				c.drainReplies(nudges, 200*time.Millisecond)
				return nil
			}
		}
	}
}

// drainReplies drops the messages answering the given requests until every request's reply
// has come (or d passed), so a relay never shows its client answers to requests it did not
// make; the first message that answers none of them is put back for the consumer.
func (c *Conn) drainReplies(ids map[string]bool, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	pending := len(ids)
	for pending > 0 {
		select {
		case m, ok := <-c.out:
			if !ok {
				return
			}
			if !ids[m.Parent().MsgID] {
				// Not ours: put it back for the consumer if there is room.
				select {
				case c.out <- m:
				default:
				}
				return
			}
			if m.Channel == jupyter.ChannelShell {
				pending--
			}
		case <-timer.C:
			return
		}
	}
}

// ExecuteResult is what one execute_request produced.
type ExecuteResult struct {
	// Status is the reply's status: ok, error or aborted.
	Status string
	// Stdout and Stderr are the stream output.
	Stdout, Stderr string
	// Results are the text/plain of execute_result and display_data outputs.
	Results []string
	// EName and EValue describe an error.
	EName, EValue string
	// Reply is the execute_reply.
	Reply *jupyter.Message
}

// Execute runs code and collects its outputs until the kernel is idle again. Input requests
// are answered with the values from input, in order. It consumes Messages while it runs, so
// it is for tests, benchmarks and single-user tools, not for a relay.
func (c *Conn) Execute(ctx context.Context, code string, input ...string) (*ExecuteResult, error) {
	req, err := c.NewMessage("execute_request", map[string]any{
		"code": code, "silent": false, "store_history": true,
		"user_expressions": map[string]any{}, "allow_stdin": len(input) > 0, "stop_on_error": true,
	})
	if err != nil {
		return nil, err
	}
	if err := c.Send(jupyter.ChannelShell, req); err != nil {
		return nil, err
	}
	res := &ExecuteResult{}
	var stdout, stderr strings.Builder
	idle := false
	for res.Reply == nil || !idle {
		var m *jupyter.Message
		var ok bool
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("executing: %w", ctx.Err())
		case m, ok = <-c.out:
			if !ok {
				return res, ErrClosed
			}
		}
		if m.Parent().MsgID != req.Header.MsgID {
			continue
		}
		switch m.Header.MsgType {
		case "stream":
			var s struct{ Name, Text string }
			_ = json.Unmarshal(m.Content, &s)
			if s.Name == "stderr" {
				stderr.WriteString(s.Text)
			} else {
				stdout.WriteString(s.Text)
			}
		case "execute_result", "display_data":
			var d struct {
				Data map[string]any `json:"data"`
			}
			_ = json.Unmarshal(m.Content, &d)
			if s, ok := d.Data["text/plain"].(string); ok {
				res.Results = append(res.Results, s)
			}
		case "error":
			var e struct{ Ename, Evalue string }
			_ = json.Unmarshal(m.Content, &e)
			res.EName, res.EValue = e.Ename, e.Evalue
		case "input_request":
			if len(input) == 0 {
				return res, fmt.Errorf("the kernel asked for input and none was given")
			}
			reply, err := jupyter.NewMessage("input_reply", c.opts.Session, c.opts.Username, map[string]string{"value": input[0]}, &m.Header)
			if err != nil {
				return res, err
			}
			input = input[1:]
			if err := c.Send(jupyter.ChannelStdin, reply); err != nil {
				return res, err
			}
		case "execute_reply":
			var r struct{ Status string }
			_ = json.Unmarshal(m.Content, &r)
			res.Status, res.Reply = r.Status, m
		case "status":
			if st, _ := m.ExecutionState(); st == "idle" {
				idle = true
			}
		}
	}
	res.Stdout, res.Stderr = stdout.String(), stderr.String()
	return res, nil
}

// Request sends m on channel and returns the first reply to it on that channel (for example
// kernel_info_reply, shutdown_reply, interrupt_reply). Like Execute, it consumes Messages.
func (c *Conn) Request(ctx context.Context, channel string, m *jupyter.Message) (*jupyter.Message, error) {
	if err := c.Send(channel, m); err != nil {
		return nil, err
	}
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the reply to %s: %w", m.Header.MsgType, ctx.Err())
		case r, ok := <-c.out:
			if !ok {
				return nil, ErrClosed
			}
			if r.Channel == channel && r.Parent().MsgID == m.Header.MsgID {
				return r, nil
			}
		}
	}
}
