package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
)

// Websocket timing.
const (
	writeTimeout = 30 * time.Second
	iopubWait    = 10 * time.Second
	dialTimeout  = 30 * time.Second
	// maxHeld bounds the messages one websocket may have waiting for its kernel to come up.
	maxHeld = 1000
)

// bridge relays one client websocket to its kernel over its own ZeroMQ socket set. What the
// client sends is queued in order and delivered once the kernel runs: a cell run while the
// kernel starts, waits for a GPU or resumes is held, never lost. Its goroutines: the
// handler's (reading the client), deliver (writing to the kernel, following the kernel's
// life), keepalive (pings), and one relaying each socket set's messages to the client; all
// end with the bridge.
type bridge struct {
	g       *Gateway
	k       *kernel
	ws      *websocket.Conn
	v1      bool
	session string

	mu       sync.Mutex
	held     []*jupyter.Message // client messages not delivered yet, in order
	lastExec *jupyter.Header    // the last execute_request delivered: its cell shows late notes
	conn     *kernelconn.Conn   // the socket set; nil until the kernel first runs
	gen      uint64             // the kernel generation conn points at
	closed   bool
	wakeup   chan struct{} // a message was queued

	writeMu   sync.Mutex
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// channels serves GET /api/kernels/{id}/channels.
func (g *Gateway) channels(w http.ResponseWriter, r *http.Request) {
	k, err := g.get(r.PathValue("id"), identityOf(r.Context()))
	if err != nil {
		writeError(w, err)
		return
	}
	up := websocket.Upgrader{
		// Offered only to clients that ask for it; others get the legacy protocol.
		Subprotocols:    []string{jupyter.SubprotocolV1},
		CheckOrigin:     g.checkOrigin,
		ReadBufferSize:  64 << 10,
		WriteBufferSize: 64 << 10,
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	ws.SetReadLimit(int64(jupyter.DefaultLimits.MaxMessage))
	session := r.URL.Query().Get("session_id")
	if session == "" {
		session = jupyter.NewID()
	}
	b := &bridge{
		g: g, k: k, ws: ws, v1: ws.Subprotocol() == jupyter.SubprotocolV1, session: session,
		wakeup: make(chan struct{}, 1), done: make(chan struct{}),
	}
	if !k.addBridge(b) {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "the kernel is gone"), time.Now().Add(time.Second))
		_ = ws.Close()
		return
	}
	g.log.Debug("websocket connected", "kernel", k.id, "session", session, "v1", b.v1)
	k.touch()
	g.report(k)
	b.wg.Add(2)
	go b.deliver()
	go b.keepalive()
	b.readClient()
	b.close()
	b.wg.Wait()
}

// checkOrigin admits clients that send no Origin (notebook servers) and browsers whose
// Origin is the gateway's own host or one the settings allow.
func (g *Gateway) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	return originAllowed(origin, r.Host, g.settings().AllowedOrigins)
}

// readClient queues what the client sends, until the websocket fails or stays silent (no
// message, no pong) for twice the ping interval: a half-open client stops counting as
// connected.
func (b *bridge) readClient() {
	wait := 2 * b.g.ping
	_ = b.ws.SetReadDeadline(time.Now().Add(wait))
	b.ws.SetPongHandler(func(string) error { return b.ws.SetReadDeadline(time.Now().Add(wait)) })
	for {
		typ, data, err := b.ws.ReadMessage()
		if err != nil {
			return
		}
		_ = b.ws.SetReadDeadline(time.Now().Add(wait))
		m, err := b.decode(typ, data)
		if err != nil {
			b.g.log.Warn("dropping a malformed websocket message", "kernel", b.k.id, "err", err.Error())
			continue
		}
		switch m.Channel {
		case jupyter.ChannelShell, jupyter.ChannelControl, jupyter.ChannelStdin:
		default:
			b.g.log.Warn("dropping a message for an unknown channel", "kernel", b.k.id, "channel", m.Channel)
			continue
		}
		b.k.touch()
		b.g.log.Debug("client message", "kernel", b.k.id, "channel", m.Channel, "msg_type", m.Header.MsgType)
		if !b.hold(m) {
			b.failRequest(m, "too many messages wait for the kernel to start: wait for it, or restart it")
		}
	}
}

// hold queues m for delivery; false when too many wait already.
func (b *bridge) hold(m *jupyter.Message) bool {
	b.mu.Lock()
	if len(b.held) >= maxHeld {
		b.mu.Unlock()
		return false
	}
	b.held = append(b.held, m)
	b.mu.Unlock()
	select {
	case b.wakeup <- struct{}{}:
	default:
	}
	return true
}

// takeHeld removes and returns the held messages.
func (b *bridge) takeHeld() []*jupyter.Message {
	b.mu.Lock()
	defer b.mu.Unlock()
	held := b.held
	b.held = nil
	return held
}

// cancelHeld answers every held execute_request with a KeyboardInterrupt: the user
// interrupted while the kernel came up. Other held messages stay.
func (b *bridge) cancelHeld(why string) {
	b.mu.Lock()
	var cancelled []*jupyter.Message
	kept := b.held[:0]
	for _, m := range b.held {
		if m.Header.MsgType == "execute_request" {
			cancelled = append(cancelled, m)
		} else {
			kept = append(kept, m)
		}
	}
	b.held = kept
	b.mu.Unlock()
	for _, m := range cancelled {
		b.replyError(m, "KeyboardInterrupt", why)
	}
}

// deliver follows the kernel's life: while it comes up it tells the notebook what it waits
// for; once it runs it connects and delivers the held messages, in order; when it is
// suspended it says so, and a held message resumes it; when it is dead every held request
// gets an error saying why.
func (b *bridge) deliver() {
	defer b.wg.Done()
	var n notices
	_, n.suspendSeq, _, n.resumeSeq = b.k.notes() // notes from before this websocket are not its
	_, n.refusalSeq = b.k.lastRefusal()
	for {
		v := b.k.view()
		switch v.phase {
		case phaseRunning:
			if b.ensureConn(v) {
				b.tellResumed(&n)
				b.flush()
			}
		case phaseStarting, phaseResuming, phaseRestarting:
			n.tellComingUp(b, v)
		case phaseSuspended:
			n.tellSuspended(b)
			if reason, seq := b.k.lastRefusal(); seq != n.refusalSeq {
				n.refusalSeq = seq
				for _, m := range b.takeHeld() {
					b.replyError(m, "KernelResumeRefused", reason)
				}
			}
			b.answerWhileSuspended()
			if b.hasHeld() {
				b.k.wake(false)
			}
		case phaseDead:
			for _, m := range b.takeHeld() {
				b.failRequest(m, v.reason)
			}
			n.tellDead(b, v.reason)
		case phaseRemoved:
			b.close()
			return
		}
		select {
		case <-b.done:
			return
		case <-v.changed:
		case <-b.wakeup:
		}
	}
}

func (b *bridge) hasHeld() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.held) > 0
}

// ensureConn makes sure the bridge's sockets point at the running kernel v; false when they
// cannot (logged; the next change of the kernel tries again).
func (b *bridge) ensureConn(v kernelView) bool {
	b.mu.Lock()
	conn, gen, closed := b.conn, b.gen, b.closed
	b.mu.Unlock()
	if closed {
		return false
	}
	if conn != nil && gen == v.gen {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), dialTimeout)
	defer cancel()
	go func() {
		select {
		case <-b.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if conn != nil {
		if err := conn.Retarget(ctx, v.info); err != nil {
			b.g.log.Warn("reconnecting a websocket to its kernel", "kernel", b.k.id, "err", err.Error())
			return false
		}
		b.subscribe(ctx, conn)
		b.mu.Lock()
		b.gen = v.gen
		b.mu.Unlock()
		return true
	}
	// Dialled without the bridge's lock: a slow kernel never blocks the bridge's readers.
	c, err := kernelconn.Dial(ctx, v.info, kernelconn.Options{Session: b.session, Username: "gateway"})
	if err != nil {
		b.g.log.Warn("connecting a websocket to its kernel", "kernel", b.k.id, "err", err.Error())
		return false
	}
	b.subscribe(ctx, c)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		_ = c.Close() // the client left while we dialled
		return false
	}
	b.conn, b.gen = c, v.gen
	b.mu.Unlock()
	b.wg.Add(1)
	go b.relayKernel(c)
	return true
}

// subscribe makes sure iopub is live before anything is sent, so the outputs of a held cell
// are not missed.
func (b *bridge) subscribe(ctx context.Context, c *kernelconn.Conn) {
	wctx, cancel := context.WithTimeout(ctx, iopubWait)
	defer cancel()
	_ = c.WaitIOPub(wctx) // a busy kernel may take a while to answer: relay anyway
}

// flush sends the held messages to the kernel, in order.
func (b *bridge) flush() {
	b.mu.Lock()
	conn := b.conn
	b.mu.Unlock()
	for _, m := range b.takeHeld() {
		if err := conn.Send(m.Channel, m); err != nil {
			b.g.log.Error("delivering a message to the kernel", "kernel", b.k.id, "msg_type", m.Header.MsgType, "err", err.Error())
			b.failRequest(m, fmt.Sprintf("the gateway could not deliver %s to the kernel: %v", m.Header.MsgType, err))
			continue
		}
		if m.Header.MsgType == "execute_request" {
			h := m.Header
			b.mu.Lock()
			b.lastExec = &h
			b.mu.Unlock()
		}
	}
}

// relayKernel sends what the kernel sends to the client.
func (b *bridge) relayKernel(c *kernelconn.Conn) {
	defer b.wg.Done()
	for m := range c.Messages() {
		b.k.observe(m, false)
		b.g.log.Debug("kernel message", "kernel", b.k.id, "channel", m.Channel, "msg_type", m.Header.MsgType)
		if err := b.write(m); err != nil {
			b.close()
			return
		}
	}
}

func (b *bridge) decode(typ int, data []byte) (*jupyter.Message, error) {
	switch {
	case typ == websocket.TextMessage:
		return jupyter.DecodeWSJSON(data, jupyter.DefaultLimits)
	case typ == websocket.BinaryMessage && b.v1:
		return jupyter.DecodeWSV1(data, jupyter.DefaultLimits)
	case typ == websocket.BinaryMessage:
		return jupyter.DecodeWSBinary(data, jupyter.DefaultLimits)
	}
	return nil, fmt.Errorf("unexpected websocket message type %d", typ)
}

// write sends m to the client in the negotiated protocol.
func (b *bridge) write(m *jupyter.Message) error {
	var (
		data []byte
		err  error
		typ  = websocket.BinaryMessage
	)
	switch {
	case b.v1:
		data, err = jupyter.EncodeWSV1(m)
	case len(m.Buffers) > 0:
		data, err = jupyter.EncodeWSBinary(m)
	default:
		data, err = jupyter.EncodeWSJSON(m)
		typ = websocket.TextMessage
	}
	if err != nil {
		return err
	}
	b.writeMu.Lock()
	defer b.writeMu.Unlock()
	_ = b.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	return b.ws.WriteMessage(typ, data)
}

// keepalive pings the client; readClient's deadline drops one that stops answering.
func (b *bridge) keepalive() {
	defer b.wg.Done()
	t := time.NewTicker(b.g.ping)
	defer t.Stop()
	for {
		select {
		case <-b.done:
			return
		case <-t.C:
			b.writeMu.Lock()
			err := b.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout))
			b.writeMu.Unlock()
			if err != nil {
				b.close()
				return
			}
		}
	}
}

// close ends the bridge: its sockets and websocket close, and its goroutines end. Messages it
// still held wait for its session's next websocket.
func (b *bridge) close() {
	b.closeOnce.Do(func() {
		close(b.done)
		b.k.dropBridge(b)
		b.mu.Lock()
		b.closed = true
		c := b.conn
		held := b.held
		b.held = nil
		b.mu.Unlock()
		b.k.orphan(b.session, held)
		b.g.log.Debug("websocket closed", "kernel", b.k.id, "session", b.session, "held", len(held))
		if c != nil {
			_ = c.Close()
		}
		_ = b.ws.Close()
		b.g.report(b.k)
	})
}

// sendControl sends one control request (such as interrupt_request) on a short-lived
// connection and waits for its reply.
func sendControl(ctx context.Context, info *jupyter.ConnectionInfo, msgType string) error {
	if info == nil {
		return errors.New("the kernel is not running")
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	c, err := kernelconn.Dial(ctx, info, kernelconn.Options{Username: "gateway"})
	if err != nil {
		return err
	}
	defer c.Close()
	m, err := c.NewMessage(msgType, nil)
	if err != nil {
		return err
	}
	if _, err := c.Request(ctx, jupyter.ChannelControl, m); err != nil {
		return fmt.Errorf("%s: %w", msgType, err)
	}
	return nil
}
