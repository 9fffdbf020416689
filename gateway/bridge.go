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

var upgrader = websocket.Upgrader{
	// Offered only to clients that ask for it; others get the legacy protocol.
	Subprotocols: []string{jupyter.SubprotocolV1},
	// Clients are notebook servers, not browsers, and every request carries the token.
	CheckOrigin:     func(*http.Request) bool { return true },
	ReadBufferSize:  64 << 10,
	WriteBufferSize: 64 << 10,
}

// Websocket timing.
const (
	pingPeriod   = 30 * time.Second
	writeTimeout = 30 * time.Second
	iopubWait    = 10 * time.Second
)

// bridge relays one client websocket to its kernel over its own ZeroMQ socket set.
type bridge struct {
	g       *Gateway
	k       *kernel
	ws      *websocket.Conn
	v1      bool
	session string

	mu      sync.Mutex // guards conn and gen
	conn    *kernelconn.Conn
	gen     uint64
	writeMu sync.Mutex

	done      chan struct{}
	closeOnce sync.Once
}

// channels serves GET /api/kernels/{id}/channels.
func (g *Gateway) channels(w http.ResponseWriter, r *http.Request) {
	k, err := g.get(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	ws.SetReadLimit(int64(jupyter.DefaultLimits.MaxMessage))
	session := r.URL.Query().Get("session_id")
	if session == "" {
		session = jupyter.NewID()
	}
	b := &bridge{g: g, k: k, ws: ws, v1: ws.Subprotocol() == jupyter.SubprotocolV1, session: session, done: make(chan struct{})}
	if err := k.addBridge(b); err != nil {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, err.Error()), time.Now().Add(time.Second))
		_ = ws.Close()
		return
	}
	g.log.Debug("websocket connected", "kernel", k.id, "session", session, "v1", b.v1)
	k.touch()
	g.report(k)
	// A running kernel gets its sockets now, so iopub flows at once; a suspended one on the
	// first message that resumes it.
	if info, _, _ := k.current(); info != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		if err := b.connect(ctx); err != nil {
			g.log.Warn("connecting a websocket to its kernel", "kernel", k.id, "err", err.Error())
		}
		cancel()
	}
	go b.keepalive()
	go b.followKernel()
	b.readClient()
}

// connect makes sure the bridge's sockets point at the kernel's current connection info.
func (b *bridge) connect(ctx context.Context) error {
	info, gen, _ := b.k.current()
	if info == nil {
		return errors.New("the kernel is suspended")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil && b.gen == gen {
		return nil
	}
	if b.conn == nil {
		c, err := kernelconn.Dial(ctx, info, kernelconn.Options{Session: b.session, Username: "gateway"})
		if err != nil {
			return err
		}
		b.conn, b.gen = c, gen
		wctx, cancel := context.WithTimeout(ctx, iopubWait)
		_ = c.WaitIOPub(wctx) // a busy kernel may take a while to answer: relay anyway
		cancel()
		go b.relayKernel(c)
		return nil
	}
	if err := b.conn.Retarget(ctx, info); err != nil {
		return err
	}
	b.gen = gen
	return nil
}

// relayKernel sends what the kernel sends to the client.
func (b *bridge) relayKernel(c *kernelconn.Conn) {
	for m := range c.Messages() {
		b.k.observe(m)
		b.g.log.Debug("kernel message", "kernel", b.k.id, "channel", m.Channel, "msg_type", m.Header.MsgType)
		if err := b.write(m); err != nil {
			b.close()
			return
		}
	}
}

// followKernel reconnects after restarts and resumes, and ends the bridge when the kernel goes.
func (b *bridge) followKernel() {
	for {
		_, _, changed := b.k.current()
		select {
		case <-b.done:
			return
		case <-changed:
		}
		if b.k.isRemoved() {
			b.close()
			return
		}
		if info, _, _ := b.k.current(); info == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := b.connect(ctx); err != nil {
			b.g.log.Warn("reconnecting a websocket to its kernel", "kernel", b.k.id, "err", err.Error())
		}
		cancel()
	}
}

// readClient relays what the client sends to the kernel, resuming a suspended kernel first.
func (b *bridge) readClient() {
	defer b.close()
	for {
		typ, data, err := b.ws.ReadMessage()
		if err != nil {
			return
		}
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
		if err := b.deliver(m); err != nil {
			b.g.log.Error("delivering a message to the kernel", "kernel", b.k.id, "msg_type", m.Header.MsgType, "err", err.Error())
			b.sendStatus(stateDead, &m.Header)
		}
	}
}

// deliver sends m to the kernel once it runs (resuming it if need be).
func (b *bridge) deliver(m *jupyter.Message) error {
	ctx, cancel := context.WithTimeout(context.Background(), b.g.settings().LaunchTimeout)
	defer cancel()
	if _, err := b.k.ensureRunning(ctx); err != nil {
		return err
	}
	if err := b.connect(ctx); err != nil {
		return err
	}
	b.mu.Lock()
	c := b.conn
	b.mu.Unlock()
	return c.Send(m.Channel, m)
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

// sendStatus tells the client the kernel's execution state (on iopub), for states the gateway
// knows before the kernel does: starting while it resumes, restarting, dead.
func (b *bridge) sendStatus(state string, parent *jupyter.Header) {
	m, err := jupyter.NewMessage("status", b.k.id, "gateway", map[string]string{"execution_state": state}, parent)
	if err != nil {
		return
	}
	m.Channel = jupyter.ChannelIOPub
	_ = b.write(m)
}

func (b *bridge) keepalive() {
	t := time.NewTicker(pingPeriod)
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

func (b *bridge) close() {
	b.closeOnce.Do(func() {
		close(b.done)
		b.k.dropBridge(b)
		b.mu.Lock()
		c := b.conn
		b.mu.Unlock()
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
