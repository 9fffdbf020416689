package fakekernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// DefaultLinger is how long a kernel that got shutdown_request waits before closing its
// sockets, so that the iopub messages it just published leave (zmq4's PUB socket sends from
// a queue and cannot be flushed).
const DefaultLinger = 100 * time.Millisecond

// iopubHWM is how many iopub messages may wait to be sent before new ones are dropped
// (libzmq's default SNDHWM).
const iopubHWM = 1000

// Options configure a kernel.
type Options struct {
	// Log receives what the kernel drops and why (default: nothing is logged).
	Log *slog.Logger
	// Username is the username in the headers of the kernel's messages (default "kernel").
	Username string
	// Linger is how long to let iopub drain after shutdown_request (default DefaultLinger;
	// negative: not at all).
	Linger time.Duration
}

// Kernel is a running fake kernel.
type Kernel struct {
	info    *jupyter.ConnectionInfo
	opts    Options
	log     *slog.Logger
	codec   *jupyter.Codec
	session string

	shell, control, stdin, iopub, hb zmq4.Socket

	ctx    context.Context // ends when the kernel stops
	cancel context.CancelFunc
	wg     sync.WaitGroup // the serving goroutines

	mu       sync.Mutex
	count    int        // the execution count
	running  *execution // the execution under way, if any
	stopOnce sync.Once
	err      error
	done     chan struct{}
}

// Start binds the kernel's five sockets on info's ip and ports and serves them until a
// shutdown_request or Close. It fails if any socket cannot be bound.
func Start(info *jupyter.ConnectionInfo, opts Options) (*Kernel, error) {
	if err := info.Validate(); err != nil {
		return nil, fmt.Errorf("the connection info: %w", err)
	}
	if info.IP == "" {
		return nil, errors.New("the connection info has no ip to bind")
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Username == "" {
		opts.Username = "kernel"
	}
	if opts.Linger == 0 {
		opts.Linger = DefaultLinger
	}
	ctx, cancel := context.WithCancel(context.Background())
	k := &Kernel{
		info: info, opts: opts, log: opts.Log, codec: jupyter.NewCodec(info.Key),
		session: jupyter.NewID(), ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	// The sockets live until stop closes them, not until ctx ends: a shutdown lingers with a
	// cancelled context so that iopub can drain.
	bg := context.Background()
	k.shell, k.control, k.stdin = zmq4.NewRouter(bg), zmq4.NewRouter(bg), zmq4.NewRouter(bg)
	k.iopub, k.hb = zmq4.NewPub(bg), zmq4.NewRep(bg)
	// zmq4 queues iopub without bound; drop beyond libzmq's default high-water mark instead,
	// so a subscriber that stops reading cannot grow the kernel's memory.
	if err := k.iopub.SetOption(zmq4.OptionHWM, iopubHWM); err != nil {
		cancel()
		return nil, fmt.Errorf("setting the iopub high-water mark: %w", err)
	}
	for _, s := range []struct {
		channel string
		socket  zmq4.Socket
	}{
		{jupyter.ChannelShell, k.shell}, {jupyter.ChannelControl, k.control}, {jupyter.ChannelStdin, k.stdin},
		{jupyter.ChannelIOPub, k.iopub}, {jupyter.ChannelHB, k.hb},
	} {
		port, _ := info.Port(s.channel)
		ep := "tcp://" + net.JoinHostPort(bindHost(info.IP), strconv.Itoa(port))
		if err := s.socket.Listen(ep); err != nil {
			k.closeSockets()
			cancel()
			return nil, fmt.Errorf("binding the %s channel on %s: %w", s.channel, ep, err)
		}
	}
	k.log.Info("fake kernel listening", "connection", info.String(), "session", k.session)

	k.serve(jupyter.ChannelShell, k.shell, k.shellHandlers())
	k.serve(jupyter.ChannelControl, k.control, k.controlHandlers())
	k.serve(jupyter.ChannelStdin, k.stdin, nil)
	k.wg.Add(1)
	go k.heartbeat()
	// ipykernel announces itself; nobody may be subscribed yet, which is fine.
	k.publish("status", map[string]string{"execution_state": "starting"}, nil)
	return k, nil
}

// Run starts a kernel and serves until a shutdown_request or until ctx ends. It returns nil
// after either, and an error if the kernel could not bind its sockets or a socket failed.
func Run(ctx context.Context, info *jupyter.ConnectionInfo, opts Options) error {
	k, err := Start(info, opts)
	if err != nil {
		return err
	}
	select {
	case <-k.Done():
	case <-ctx.Done():
	}
	return k.Close()
}

// bindHost is the host to bind for the connection file's ip ("*" is every address).
func bindHost(ip string) string {
	if ip == "*" {
		return "0.0.0.0"
	}
	return ip
}

// Session is the kernel's session id, the session of every message it sends.
func (k *Kernel) Session() string { return k.session }

// Done is closed when the kernel has stopped: after a shutdown_request, Close or a failure.
func (k *Kernel) Done() <-chan struct{} { return k.done }

// Err is why the kernel stopped: nil after a shutdown_request or Close.
func (k *Kernel) Err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.err
}

// Close stops the kernel (a running execution ends without a reply) and waits until its
// sockets are closed. It returns Err.
func (k *Kernel) Close() error {
	k.stop(nil, 0)
	<-k.done
	return k.Err()
}

// stop stops the kernel once: it cancels executions at once and closes the sockets after
// linger. It does not wait, so a serving goroutine may call it.
func (k *Kernel) stop(err error, linger time.Duration) {
	k.stopOnce.Do(func() {
		k.mu.Lock()
		k.err = err
		k.mu.Unlock()
		k.cancel()
		go func() {
			if linger > 0 {
				t := time.NewTimer(linger)
				<-t.C
			}
			k.closeSockets()
			k.wg.Wait()
			close(k.done)
		}()
	})
}

func (k *Kernel) closeSockets() {
	for _, s := range []zmq4.Socket{k.shell, k.control, k.stdin, k.iopub, k.hb} {
		if err := s.Close(); err != nil {
			k.log.Debug("closing a socket", "err", err.Error())
		}
	}
}

// stopping reports whether the kernel is stopping (it then handles no more requests).
func (k *Kernel) stopping() bool { return k.ctx.Err() != nil }

// heartbeat echoes every message on the heartbeat socket.
func (k *Kernel) heartbeat() {
	defer k.wg.Done()
	for {
		msg, err := k.hb.Recv()
		if k.stopping() {
			return
		}
		if err != nil {
			// A REP socket whose peer sent a malformed envelope: drop it and go on.
			k.log.Warn("heartbeat: dropped a message", "err", err.Error())
			continue
		}
		if err := k.hb.Send(msg); err != nil && !k.stopping() {
			k.log.Warn("heartbeat: echoing", "err", err.Error())
		}
	}
}
