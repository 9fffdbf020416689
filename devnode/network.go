package devnode

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// hostNetwork is the host side of the pods' network, shared by every devnode on the machine
// that uses the same pod network: a Linux bridge holding the network's first address (the
// pods' default gateway), and a local route that makes every address of the service network
// one the host can listen on (so Service proxies serve pods and host processes alike).
type hostNetwork struct {
	bridge   string
	gateway  netip.Prefix
	services netip.Prefix
	// api is the API server's host:port when it is on the host's loopback: pods reach it
	// through a relay at the same address inside their own network namespace, so the
	// server's certificate (for 127.0.0.1) still matches what in-cluster clients dial.
	api                string
	ip, nsenter, sleep string
	log                *slog.Logger
}

// bridgeName is the bridge of a pod network: "ejbr" and the network in hex (at most 15
// characters, as Linux allows).
func bridgeName(p netip.Prefix) string {
	b := p.Addr().As4()
	return fmt.Sprintf("ejbr%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], p.Bits())
}

// vethName is the host end of a pod's veth pair, named for its IP (unique on the machine).
func vethName(prefix string, ip netip.Addr) string {
	b := ip.As4()
	return fmt.Sprintf("%s%02x%02x%02x%02x", prefix, b[0], b[1], b[2], b[3])
}

// newHostNetwork finds the tools the pods' network needs and sets up the bridge and the
// service route (idempotent: another devnode may have done it already).
func newHostNetwork(o Options, apiHost string, log *slog.Logger) (*hostNetwork, error) {
	h := &hostNetwork{
		bridge:   bridgeName(o.PodNetwork),
		gateway:  netip.PrefixFrom(o.PodNetwork.Addr().Next(), o.PodNetwork.Bits()),
		services: o.ServiceNetwork,
		log:      log,
	}
	for _, tool := range []struct {
		dst       *string
		name, pkg string
	}{{&h.ip, "ip", "iproute2"}, {&h.nsenter, "nsenter", "util-linux"}, {&h.sleep, "sleep", "coreutils"}} {
		p, err := exec.LookPath(tool.name)
		if err != nil {
			return nil, fmt.Errorf("devnode gives each pod a network namespace with %s (%s): %w; install it (apt-get install %s)", tool.name, tool.pkg, err, tool.pkg)
		}
		*tool.dst = p
	}
	if host, port, ok := apiHostPort(apiHost); ok {
		if a, err := netip.ParseAddr(host); err == nil && a.IsLoopback() {
			h.api = net.JoinHostPort(a.String(), port)
		}
	}
	lock, err := os.OpenFile(filepath.Join(o.LockDir, "network.lock"), os.O_CREATE|os.O_RDWR|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking the host network setup: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return nil, fmt.Errorf("locking the host network setup: %w", err)
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", h.bridge)); err != nil {
		if err := h.run("link", "add", "name", h.bridge, "type", "bridge"); err != nil {
			return nil, fmt.Errorf("creating the pod bridge %s: %w", h.bridge, err)
		}
	}
	for _, args := range [][]string{
		{"addr", "replace", h.gateway.String(), "dev", h.bridge},
		{"link", "set", h.bridge, "up"},
		{"route", "replace", "local", h.services.String(), "dev", "lo"},
	} {
		if err := h.run(args...); err != nil {
			return nil, fmt.Errorf("setting up the pod bridge %s and the service network %s: %w", h.bridge, h.services, err)
		}
	}
	return h, nil
}

// run runs ip with args.
func (h *hostNetwork) run(args ...string) error {
	out, err := exec.Command(h.ip, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// podNetwork is one pod's network namespace, held by a sleeping process for the pod's life
// (so it dies, and its veth pair with it, when devnode dies), with the pod IP on eth0 and
// the bridge as default gateway.
type podNetwork struct {
	holder *exec.Cmd
	ns     *os.File
	hostIf string
	relay  net.Listener
	wg     sync.WaitGroup
	h      *hostNetwork

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// attach creates the network namespace of a pod whose IP is ip. The holder is started by
// sp, so it gets SIGKILL when devnode dies, as containers do.
func (h *hostNetwork) attach(sp *spawner, ip netip.Addr) (_ *podNetwork, err error) {
	holder := exec.Command(h.sleep, "infinity")
	holder.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Cloneflags: syscall.CLONE_NEWNET}
	if err := sp.start(holder); err != nil {
		return nil, fmt.Errorf("starting the pod's network namespace: %w", err)
	}
	p := &podNetwork{holder: holder, hostIf: vethName("ejv", ip), h: h, conns: map[net.Conn]bool{}}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	pid := strconv.Itoa(holder.Process.Pid)
	if p.ns, err = os.Open("/proc/" + pid + "/ns/net"); err != nil {
		return nil, fmt.Errorf("opening the pod's network namespace: %w", err)
	}
	peer := vethName("ejp", ip)
	_ = h.run("link", "del", p.hostIf) // left by a devnode killed half-way
	if err := h.run("link", "add", p.hostIf, "type", "veth", "peer", "name", peer, "netns", pid); err != nil {
		return nil, err
	}
	if err := h.run("link", "set", p.hostIf, "master", h.bridge, "up"); err != nil {
		return nil, err
	}
	batch := strings.Join([]string{
		"link set lo up",
		"link set " + peer + " name eth0",
		"addr add " + netip.PrefixFrom(ip, h.gateway.Bits()).String() + " dev eth0",
		"link set eth0 up",
		"route add default via " + h.gateway.Addr().String(),
	}, "\n") + "\n"
	cmd := exec.Command(h.nsenter, "--net=/proc/"+pid+"/ns/net", h.ip, "-batch", "-")
	cmd.Stdin = strings.NewReader(batch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("configuring the pod's network namespace: %w: %s", err, strings.TrimSpace(string(out)))
	}
	if h.api != "" {
		if p.relay, err = listenIn(p.ns, h.api); err != nil {
			return nil, fmt.Errorf("relaying the API server into the pod: %w", err)
		}
		p.wg.Add(1)
		go p.relayAPI()
	}
	return p, nil
}

// listenIn listens on addr inside the network namespace ns; the socket stays in that
// namespace. A locked thread enters ns only for the listen and goes back to its own namespace
// before it is unlocked. It is never retired instead: a thread that exits sends the
// parent-death signal to every process forked from it, whoever forked them.
func listenIn(ns *os.File, addr string) (net.Listener, error) {
	type result struct {
		l   net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("opening this thread's network namespace: %w", err)}
			return
		}
		defer own.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("entering the pod's network namespace: %w", err)}
			return
		}
		l, err := net.Listen("tcp", addr)
		if rerr := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); rerr != nil {
			if l != nil {
				_ = l.Close()
			}
			ch <- result{err: fmt.Errorf("returning to the host's network namespace: %w", rerr)}
			select {} // the thread stays locked here: no other goroutine may run in the pod's namespace
		}
		runtime.UnlockOSThread()
		ch <- result{l, err}
	}()
	r := <-ch
	return r.l, r.err
}

// relayAPI relays each connection the pod makes to the API server's address to the API
// server on the host.
func (p *podNetwork) relayAPI() {
	defer p.wg.Done()
	for {
		c, err := p.relay.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns[c] = true
		p.mu.Unlock()
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			relay(c, p.h.api, p.h.log)
			p.mu.Lock()
			delete(p.conns, c)
			p.mu.Unlock()
		}()
	}
}

// relay copies between c and a new connection to addr until both sides are done.
func relay(c net.Conn, addr string, log *slog.Logger) {
	defer c.Close()
	up, err := net.Dial("tcp", addr)
	if err != nil {
		log.Debug("relaying a connection", "to", addr, "err", err)
		return
	}
	defer up.Close()
	splice(c, up)
}

// close ends the namespace: the relay stops, the holder is killed, and the veth pair goes
// with the namespace.
func (p *podNetwork) close() {
	if p.relay != nil {
		_ = p.relay.Close()
	}
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	if p.holder.Process != nil {
		_ = p.holder.Process.Kill()
		_ = p.holder.Wait()
	}
	if p.ns != nil {
		_ = p.ns.Close()
	}
	if _, err := os.Stat(filepath.Join("/sys/class/net", p.hostIf)); err == nil {
		if err := p.h.run("link", "del", p.hostIf); err != nil {
			p.h.log.Debug("removing a pod's veth", "link", p.hostIf, "err", err)
		}
	}
	p.wg.Wait()
}
