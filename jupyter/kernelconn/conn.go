// Package kernelconn connects one client to a Jupyter kernel over ZeroMQ: DEALER sockets for
// shell, control and stdin whose identity is the client's session (so replies and input
// requests find the right client), a SUB socket for iopub that is always drained, and a REQ
// socket for the heartbeat.
//
// It uses github.com/go-zeromq/zmq4 (pure Go) and handles that library's traits itself: Recv has
// no timeout, so Close closes the sockets to unblock readers; a send to a dead peer can succeed
// silently, so liveness comes from the heartbeat, with a timeout; the library sends no ZMTP
// heartbeats; its readers hold only a few messages, so iopub is read continuously into a
// bounded buffer and dropped (and counted) when the consumer falls behind rather than stalling
// the kernel. On a kernel restart or a lost peer, Reconnect closes and recreates every socket.
package kernelconn

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// Options configure a connection.
type Options struct {
	// Session is the client's session id: the DEALER identity and the session of the
	// messages Conn makes itself. Defaults to a new UUID.
	Session string
	// Username is the user of the messages Conn makes itself.
	Username string
	// Buffer is the capacity of the Messages channel (default 1024). iopub messages that find
	// it full are dropped and counted (except with IOPubOnly, where they wait); replies wait.
	Buffer int
	// DialTimeout bounds how long Dial (and Reconnect) keeps trying to reach the kernel
	// (default 30s).
	DialTimeout time.Duration
	// Limits bound what is accepted from the kernel (default jupyter.DefaultLimits).
	Limits jupyter.Limits
	// IOPubOnly connects only iopub and the heartbeat: for a gateway's activity monitor,
	// which listens to a kernel without talking to it and must see every status message, so
	// none is dropped: the reader of Messages must keep up.
	IOPubOnly bool
	// OnError, if set, is told about messages dropped for a bad signature or malformed frames
	// (never with the key).
	OnError func(channel string, err error)
}

// ErrClosed is returned by the operations of a closed Conn.
var ErrClosed = errors.New("kernel connection closed")

// Conn is one client's socket set to one kernel.
type Conn struct {
	info  *jupyter.ConnectionInfo
	opts  Options
	codec *jupyter.Codec
	out   chan *jupyter.Message

	mu      sync.Mutex // guards the sockets and gen
	sockets map[string]zmq4.Socket
	hb      zmq4.Socket
	gen     *generation

	hbMu      sync.Mutex // one heartbeat at a time
	dropped   atomic.Uint64
	closed    chan struct{}
	closeOnce sync.Once
}

// generation is one set of sockets and their readers.
type generation struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Dial connects to the kernel described by info.
func Dial(ctx context.Context, info *jupyter.ConnectionInfo, opts Options) (*Conn, error) {
	if opts.Session == "" {
		opts.Session = jupyter.NewID()
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 1024
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 30 * time.Second
	}
	if opts.Limits == (jupyter.Limits{}) {
		opts.Limits = jupyter.DefaultLimits
	}
	c := &Conn{
		info:   info,
		opts:   opts,
		codec:  jupyter.NewCodecWithLimits(info.Key, opts.Limits),
		out:    make(chan *jupyter.Message, opts.Buffer),
		closed: make(chan struct{}),
	}
	if err := c.connect(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Session returns the client session (the DEALER identity).
func (c *Conn) Session() string { return c.opts.Session }

// Messages delivers every message from shell, control, stdin and iopub, with Channel set. It is
// closed by Close.
func (c *Conn) Messages() <-chan *jupyter.Message { return c.out }

// Dropped is the number of iopub messages dropped because Messages was full.
func (c *Conn) Dropped() uint64 { return c.dropped.Load() }

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// connect creates and dials a fresh socket set and starts its readers.
func (c *Conn) connect(ctx context.Context) error {
	gctx, cancel := context.WithCancel(context.Background())
	gen := &generation{ctx: gctx, cancel: cancel}
	retries := int(c.opts.DialTimeout / (100 * time.Millisecond))
	sockOpts := func(extra ...zmq4.Option) []zmq4.Option {
		return append([]zmq4.Option{
			zmq4.WithDialerRetry(100 * time.Millisecond),
			zmq4.WithDialerMaxRetries(retries),
			zmq4.WithDialerTimeout(5 * time.Second),
			zmq4.WithAutomaticReconnect(false),
		}, extra...)
	}
	id := zmq4.WithID(zmq4.SocketIdentity(c.opts.Session))
	sockets := map[string]zmq4.Socket{jupyter.ChannelIOPub: zmq4.NewSub(gctx, sockOpts()...)}
	if !c.opts.IOPubOnly {
		sockets[jupyter.ChannelShell] = zmq4.NewDealer(gctx, sockOpts(id)...)
		sockets[jupyter.ChannelControl] = zmq4.NewDealer(gctx, sockOpts(id)...)
		sockets[jupyter.ChannelStdin] = zmq4.NewDealer(gctx, sockOpts(id)...)
	}
	hb := zmq4.NewReq(gctx, sockOpts()...)
	fail := func(err error) error {
		cancel()
		for _, s := range sockets {
			_ = s.Close()
		}
		_ = hb.Close()
		return err
	}
	// Dial in parallel: each blocks until the kernel listens or retries run out.
	errs := make(chan error, len(sockets)+1)
	dial := func(ch string, s zmq4.Socket) {
		ep, err := c.info.Endpoint(ch)
		if err == nil {
			err = s.Dial(ep)
		}
		if err != nil {
			err = fmt.Errorf("connecting the %s channel: %w", ch, err)
		}
		errs <- err
	}
	for ch, s := range sockets {
		go dial(ch, s)
	}
	go dial(jupyter.ChannelHB, hb)
	var firstErr error
	for range len(sockets) + 1 {
		select {
		case err := <-errs:
			if err != nil && firstErr == nil {
				firstErr = err
			}
		case <-ctx.Done():
			return fail(ctx.Err())
		}
	}
	if firstErr != nil {
		return fail(firstErr)
	}
	if err := sockets[jupyter.ChannelIOPub].SetOption(zmq4.OptionSubscribe, ""); err != nil {
		return fail(fmt.Errorf("subscribing to iopub: %w", err))
	}

	c.mu.Lock()
	c.sockets, c.hb, c.gen = sockets, hb, gen
	codec := c.codec
	c.mu.Unlock()
	for ch, s := range sockets {
		gen.wg.Add(1)
		go c.read(gen, codec, ch, s)
	}
	return nil
}

// read receives from one socket until its generation ends.
func (c *Conn) read(gen *generation, codec *jupyter.Codec, channel string, s zmq4.Socket) {
	defer gen.wg.Done()
	for {
		raw, err := s.Recv()
		if err != nil {
			// The peer went away (kernel restarted or died). Keep trying to read until the
			// generation ends: a closed connection is reported by Close/Reconnect; liveness
			// by the heartbeat.
			if gen.ctx.Err() != nil || wait.PollUntilContextCancel(gen.ctx, 100*time.Millisecond, false, func(context.Context) (bool, error) {
				raw, err = s.Recv()
				return err == nil, nil
			}) != nil {
				return
			}
		}
		m, err := codec.Decode(raw.Frames)
		if err != nil {
			if c.opts.OnError != nil {
				c.opts.OnError(channel, err)
			}
			continue
		}
		m.Channel = channel
		// A websocket's iopub drops what a slow client cannot take, so the kernel never waits
		// for it; a monitor (IOPubOnly) must see every status, and its reader is quick.
		if channel == jupyter.ChannelIOPub && !c.opts.IOPubOnly {
			select {
			case c.out <- m:
			default:
				c.dropped.Add(1)
			}
			continue
		}
		select {
		case c.out <- m:
		case <-gen.ctx.Done():
			return
		}
	}
}

// Send signs m and sends it on channel (shell, control or stdin). A nil error means the
// message was queued, not that the kernel received it: use Heartbeat to know the kernel lives.
func (c *Conn) Send(channel string, m *jupyter.Message) error {
	select {
	case <-c.closed:
		return ErrClosed
	default:
	}
	if channel != jupyter.ChannelShell && channel != jupyter.ChannelControl && channel != jupyter.ChannelStdin {
		return fmt.Errorf("cannot send on channel %q: use shell, control or stdin", channel)
	}
	c.mu.Lock()
	s, codec := c.sockets[channel], c.codec
	c.mu.Unlock()
	if s == nil {
		return fmt.Errorf("sending %s: the connection is reconnecting", m.Header.MsgType)
	}
	frames, err := codec.Encode(m)
	if err != nil {
		return err
	}
	if err := s.Send(zmq4.NewMsgFrom(frames...)); err != nil {
		return fmt.Errorf("sending %s on %s: %w", m.Header.MsgType, channel, err)
	}
	return nil
}

// NewMessage makes a message from this connection's session.
func (c *Conn) NewMessage(msgType string, content any) (*jupyter.Message, error) {
	return jupyter.NewMessage(msgType, c.opts.Session, c.opts.Username, content, nil)
}

// Heartbeat sends one ping on the heartbeat channel and waits up to timeout for the echo. On
// a timeout the heartbeat socket is recreated (a REQ socket that lost its reply is stuck).
func (c *Conn) Heartbeat(ctx context.Context, timeout time.Duration) error {
	c.hbMu.Lock()
	defer c.hbMu.Unlock()
	c.mu.Lock()
	hb, gen := c.hb, c.gen
	c.mu.Unlock()
	if hb == nil {
		return ErrClosed
	}
	ep, _ := c.info.Endpoint(jupyter.ChannelHB)
	ping := []byte(jupyter.NewID())
	done := make(chan error, 1)
	go func() {
		if err := hb.Send(zmq4.NewMsg(ping)); err != nil {
			done <- err
			return
		}
		reply, err := hb.Recv()
		if err == nil && (len(reply.Frames) != 1 || string(reply.Frames[0]) != string(ping)) {
			err = errors.New("heartbeat echoed something else")
		}
		done <- err
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	case <-timer.C:
	case <-c.closed:
		return ErrClosed
	}
	// Replace the stuck REQ socket; closing it unblocks the goroutine above.
	c.resetHeartbeat(gen, hb, ep)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("no heartbeat from the kernel within %s", timeout)
}

func (c *Conn) resetHeartbeat(gen *generation, old zmq4.Socket, ep string) {
	_ = old.Close()
	hb := zmq4.NewReq(gen.ctx, zmq4.WithDialerRetry(100*time.Millisecond), zmq4.WithDialerMaxRetries(0), zmq4.WithAutomaticReconnect(false))
	// A failed dial leaves a socket whose operations fail fast; the next Reconnect makes a
	// working one.
	_ = hb.Dial(ep)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		_ = hb.Close()
		return
	}
	c.hb = hb
}

// Reconnect closes every socket and connects a fresh set (same session), for a restarted
// kernel or one whose peer was lost. Messages keeps working across it.
func (c *Conn) Reconnect(ctx context.Context) error { return c.reconnect(ctx, nil) }

// Retarget points the connection at new connection info (a kernel that came back in a new pod)
// and reconnects.
func (c *Conn) Retarget(ctx context.Context, info *jupyter.ConnectionInfo) error {
	return c.reconnect(ctx, info)
}

// reconnect replaces the sockets, connecting to info if it is not nil.
func (c *Conn) reconnect(ctx context.Context, info *jupyter.ConnectionInfo) error {
	select {
	case <-c.closed:
		return ErrClosed
	default:
	}
	c.hbMu.Lock()
	defer c.hbMu.Unlock()
	c.stopGeneration()
	if info != nil {
		c.mu.Lock()
		c.info = info
		c.codec = jupyter.NewCodecWithLimits(info.Key, c.opts.Limits)
		c.mu.Unlock()
	}
	return c.connect(ctx)
}

func (c *Conn) stopGeneration() {
	c.mu.Lock()
	gen, sockets, hb := c.gen, c.sockets, c.hb
	c.gen, c.sockets, c.hb = nil, nil, nil
	c.mu.Unlock()
	if gen == nil {
		return
	}
	gen.cancel()
	for _, s := range sockets {
		_ = s.Close()
	}
	if hb != nil {
		_ = hb.Close()
	}
	gen.wg.Wait()
}

// Close closes every socket and then Messages.
func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.hbMu.Lock()
		c.stopGeneration()
		c.hbMu.Unlock()
		close(c.out)
	})
	return nil
}
