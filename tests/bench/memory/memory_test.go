// Package memory measures what an idle kernel costs the gateway: b.N fake kernels, each
// started through POST /api/kernels and connected once (a websocket, kernel_info_request and
// its reply, the websocket closed), then left idle, as a notebook tab that was closed leaves
// its kernel. The gateway runs in this process with a small provisioner; the fake kernels
// (internal/fakekernel) run in a helper process, so that this process's heap, goroutines and
// file descriptors are the gateway's own. Run it with
//
//	go test -run XXX -bench IdleKernels -benchtime 1000x ./tests/bench/memory
//
// and it prints a table after the benchmark lines.
package memory

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
	"github.com/elastic-jupyter/elastic-jupyter/internal/fakekernel"
	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// goalPerKernel is the goal for the gateway's memory per idle kernel (reported, not
// asserted: benchmarks report, tests assert behaviour).
const goalPerKernel = 1 << 20

// hostEnv makes the test binary the fake kernels' host process (see runHost).
const hostEnv = "ELASTIC_JUPYTER_BENCH_KERNEL_HOST"

func TestMain(m *testing.M) {
	if os.Getenv(hostEnv) == "1" {
		os.Exit(runHost(os.Stdin, os.Stdout))
	}
	code := m.Run()
	printTable()
	os.Exit(code)
}

// usage is what this process holds at one moment, after a full garbage collection.
type usage struct {
	heap, stacks, rss uint64
	goroutines, fds   int
}

func measure() usage {
	runtime.GC()
	debug.FreeOSMemory() // a second collection, and the freed pages go back to the OS for RSS
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fds, _ := os.ReadDir("/proc/self/fd")
	return usage{heap: ms.HeapAlloc, stacks: ms.StackInuse, rss: rssOf("self"), goroutines: runtime.NumGoroutine(), fds: len(fds)}
}

// rssOf reads VmRSS of /proc/<pid>/status, in bytes.
func rssOf(pid string) uint64 {
	data, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// result is one run of BenchmarkIdleKernels.
type result struct {
	kernels     int
	before      usage
	after       usage
	hostRSS     uint64 // the helper process holding the fake kernels
	hostRSSIdle uint64 // the helper process before any kernel
	setup       time.Duration
}

var last *result // the last (largest) run

func BenchmarkIdleKernels(b *testing.B) {
	n := b.N
	host := startHost(b)
	prov := &hostProvisioner{host: host}
	g := gateway.New(gateway.Options{
		Provisioner: prov, Specs: fakeSpecs{}, Settings: gateway.StaticSettings{},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, l) }()
	defer func() {
		cancel()
		<-served
	}()
	c := &client{base: "http://" + l.Addr().String(), http: &http.Client{Timeout: time.Minute}}

	// One kernel first, gone again before the baseline: what the first kernel allocates once
	// (pools, the codec's tables) is not a per-kernel cost.
	id, err := c.startAndConnect(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.shutdown(ctx, id); err != nil {
		b.Fatal(err)
	}
	if err := c.waitIdle(ctx, 0); err != nil {
		b.Fatal(err)
	}
	c.http.CloseIdleConnections()
	r := &result{kernels: n, hostRSSIdle: rssOf(strconv.Itoa(host.cmd.Process.Pid))}
	r.before = measure()

	b.ResetTimer()
	t0 := time.Now()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan struct{}, n)
	)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range min(n, 16) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if _, err := c.startAndConnect(ctx); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	r.setup = time.Since(t0)
	if len(errs) > 0 {
		b.Fatalf("%d of %d kernels did not start and answer kernel_info (first: %v)", len(errs), n, errs[0])
	}
	// Every websocket has closed on the gateway's side too, and every kernel is idle.
	if err := c.waitIdle(ctx, n); err != nil {
		b.Fatal(err)
	}
	c.http.CloseIdleConnections()
	r.after = measure()
	r.hostRSS = rssOf(strconv.Itoa(host.cmd.Process.Pid))
	last = r
	per := float64(int64(r.after.heap+r.after.stacks)-int64(r.before.heap+r.before.stacks)) / float64(n)
	b.ReportMetric(per/1024, "KiB/idle-kernel")
	b.ReportMetric(float64(r.after.goroutines-r.before.goroutines)/float64(n), "goroutines/idle-kernel")
}

func printTable() {
	r := last
	if r == nil {
		return
	}
	mib := func(v uint64) string { return fmt.Sprintf("%.1f", float64(v)/(1<<20)) }
	perKiB := func(a, b uint64) string {
		return fmt.Sprintf("%.1f", float64(int64(a)-int64(b))/float64(r.kernels)/1024)
	}
	perN := func(a, b int) string { return fmt.Sprintf("%.2f", float64(a-b)/float64(r.kernels)) }
	fmt.Printf("\ngateway memory per idle kernel: %d fake kernels, each started with POST /api/kernels, connected once (websocket, kernel_info), websocket closed, %s\n",
		r.kernels, time.Now().Format(time.DateOnly))
	fmt.Printf("  %-28s %10s %10s %10s %11s %5s\n", "", "heap MiB", "stacks MiB", "RSS MiB", "goroutines", "fds")
	fmt.Printf("  %-28s %10s %10s %10s %11d %5d\n", "gateway, no kernels", mib(r.before.heap), mib(r.before.stacks), mib(r.before.rss), r.before.goroutines, r.before.fds)
	fmt.Printf("  %-28s %10s %10s %10s %11d %5d\n", fmt.Sprintf("gateway, %d idle kernels", r.kernels), mib(r.after.heap), mib(r.after.stacks), mib(r.after.rss), r.after.goroutines, r.after.fds)
	fmt.Printf("  %-28s %10s %10s %10s %11s %5s\n", "per kernel (KiB; counts)", perKiB(r.after.heap, r.before.heap), perKiB(r.after.stacks, r.before.stacks),
		perKiB(r.after.rss, r.before.rss), perN(r.after.goroutines, r.before.goroutines), perN(r.after.fds, r.before.fds))
	total := float64(int64(r.after.heap+r.after.stacks)-int64(r.before.heap+r.before.stacks)) / float64(r.kernels)
	fmt.Printf("  heap+stacks per idle kernel: %.1f KiB (goal <= %d KiB at 1000 kernels)\n", total/1024, goalPerKernel>>10)
	fmt.Printf("  the fake kernels themselves (helper process, not the gateway): RSS %s MiB, %s KiB per kernel; %d kernels set up in %s\n",
		mib(r.hostRSS), perKiB(r.hostRSS, r.hostRSSIdle), r.kernels, r.setup.Round(10*time.Millisecond))
}

// client drives the gateway as notebook servers do.
type client struct {
	base string
	http *http.Client
}

// startAndConnect starts a fake kernel, opens its websocket, asks kernel_info and closes the
// websocket once the reply came.
func (c *client) startAndConnect(ctx context.Context) (string, error) {
	resp, err := c.http.Post(c.base+"/api/kernels", "application/json", strings.NewReader(`{"name":"fake"}`))
	if err != nil {
		return "", err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var model struct{ ID string }
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &model) != nil || model.ID == "" {
		return "", fmt.Errorf("POST /api/kernels: %d %s", resp.StatusCode, body)
	}
	ws, wresp, err := websocket.DefaultDialer.DialContext(ctx, strings.Replace(c.base, "http://", "ws://", 1)+"/api/kernels/"+model.ID+"/channels", nil)
	if wresp != nil && wresp.Body != nil {
		wresp.Body.Close()
	}
	if err != nil {
		return model.ID, fmt.Errorf("kernel %s: opening the websocket: %w", model.ID, err)
	}
	defer ws.Close()
	req, err := jupyter.NewMessage("kernel_info_request", jupyter.NewID(), "bench", map[string]any{}, nil)
	if err != nil {
		return model.ID, err
	}
	req.Channel = jupyter.ChannelShell
	data, err := jupyter.EncodeWSJSON(req)
	if err != nil {
		return model.ID, err
	}
	if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
		return model.ID, err
	}
	// The reply (shell) and the kernel's idle status (iopub) both, before closing: a client
	// that leaves between the two can leave the gateway believing the kernel busy.
	_ = ws.SetReadDeadline(time.Now().Add(time.Minute))
	replied, idle := false, false
	for !replied || !idle {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return model.ID, fmt.Errorf("kernel %s: waiting for kernel_info_reply and idle: %w", model.ID, err)
		}
		m, err := jupyter.DecodeWSJSON(data, jupyter.DefaultLimits)
		if err != nil || m.Parent().MsgID != req.Header.MsgID {
			continue
		}
		if m.Header.MsgType == "kernel_info_reply" {
			replied = true
		}
		if st, ok := m.ExecutionState(); ok && st == "idle" {
			idle = true
		}
	}
	_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return model.ID, nil
}

func (c *client) shutdown(ctx context.Context, id string) error {
	req, err := http.NewRequestWithContext(ctx, "DELETE", c.base+"/api/kernels/"+id, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		return fmt.Errorf("DELETE /api/kernels/%s: %d", id, resp.StatusCode)
	}
	return nil
}

// waitIdle waits until the gateway lists n kernels, all idle with no websocket connected.
func (c *client) waitIdle(ctx context.Context, n int) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(time.Minute)
	var last string
	for {
		resp, err := c.http.Get(c.base + "/api/kernels")
		if err == nil {
			var models []struct {
				ExecutionState string `json:"execution_state"`
				Connections    int    `json:"connections"`
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if json.Unmarshal(body, &models) == nil {
				notIdle, connected := map[string]int{}, 0
				for _, m := range models {
					if m.ExecutionState != "idle" {
						notIdle[m.ExecutionState]++
					}
					if m.Connections != 0 {
						connected++
					}
				}
				if len(models) == n && len(notIdle) == 0 && connected == 0 {
					return nil
				}
				last = fmt.Sprintf("%d kernels; not idle: %v; %d still connected", len(models), notIdle, connected)
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("the gateway did not settle on %d idle kernels without connections: %s", n, last)
		case <-tick.C:
		}
	}
}

// fakeSpecs offers one kernelspec, "fake"; the provisioner runs it in the host process.
type fakeSpecs struct{}

func (fakeSpecs) List(context.Context) ([]gateway.KernelSpec, string, error) {
	return []gateway.KernelSpec{{Name: "fake", DisplayName: "Fake Python", Language: "python", Argv: []string{"fake-kernel", "-f", "{connection_file}"}, InterruptMode: "signal"}}, "fake", nil
}

// hostProvisioner runs each kernel in the host process: a kernel listens once Start returns.
// What it keeps per kernel (an id and its connection info) is counted as the gateway's.
type hostProvisioner struct {
	host *host
	mu   sync.Mutex
	next int
	info map[string]*jupyter.ConnectionInfo
}

var _ gateway.Provisioner = (*hostProvisioner)(nil)

var errUnsupported = errors.New("not supported by the benchmark's provisioner")

func (p *hostProvisioner) Start(_ context.Context, req gateway.StartRequest) error {
	p.mu.Lock()
	p.next++
	ip := kernelIP(p.next)
	p.mu.Unlock()
	info, err := p.host.start(req.ID, ip)
	if err != nil {
		return err
	}
	p.mu.Lock()
	if p.info == nil {
		p.info = map[string]*jupyter.ConnectionInfo{}
	}
	p.info[req.ID] = info
	p.mu.Unlock()
	return nil
}

func (p *hostProvisioner) lookup(id string) (*jupyter.ConnectionInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	info, ok := p.info[id]
	if !ok {
		return nil, fmt.Errorf("kernel %s: %w", id, gateway.ErrNotFound)
	}
	return info, nil
}

func (p *hostProvisioner) Wait(_ context.Context, id string, _ func(string)) (*jupyter.ConnectionInfo, error) {
	return p.lookup(id)
}

func (p *hostProvisioner) Interrupt(context.Context, string) error { return errUnsupported }

func (p *hostProvisioner) Restart(context.Context, string) (*jupyter.ConnectionInfo, error) {
	return nil, errUnsupported
}

func (p *hostProvisioner) Suspend(context.Context, string) error { return errUnsupported }
func (p *hostProvisioner) Resume(context.Context, string) error  { return errUnsupported }

func (p *hostProvisioner) Shutdown(_ context.Context, id string) error {
	if _, err := p.lookup(id); err != nil {
		return err
	}
	p.mu.Lock()
	delete(p.info, id)
	p.mu.Unlock()
	return p.host.stop(id)
}

func (p *hostProvisioner) Alive(_ context.Context, id string) bool {
	_, err := p.lookup(id)
	return err == nil
}

func (p *hostProvisioner) Restore(context.Context) ([]*gateway.Instance, error) { return nil, nil }
func (p *hostProvisioner) Report(string, gateway.Activity)                      {}

// GPUs is 0: the benchmark's kernels hold none.
func (p *hostProvisioner) GPUs(context.Context, string) int { return 0 }

// State is false: the benchmark's kernels keep no variables across a suspension.
func (p *hostProvisioner) State(context.Context, string) (gateway.StateLocation, bool) {
	return gateway.StateLocation{}, false
}

// RecordState keeps nothing.
func (p *hostProvisioner) RecordState(context.Context, string, gateway.StateOutcome) error {
	return nil
}

// kernelIP gives kernel i an address of its own in 127.77.0.0/16, so that its five ports can
// be any free ones there without colliding with anything on 127.0.0.1.
func kernelIP(i int) string {
	return fmt.Sprintf("127.77.%d.%d", 1+i/250, 1+i%250)
}

// host is the helper process that runs the fake kernels: the test binary again, with hostEnv
// set. Each request is one line of JSON on its stdin, each answer one line on its stdout.
type host struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	in  io.WriteCloser
	out *bufio.Reader
}

type hostRequest struct {
	Op string `json:"op"` // start or stop
	ID string `json:"id"`
	IP string `json:"ip,omitempty"`
}

type hostAnswer struct {
	Info  *jupyter.ConnectionInfo `json:"info,omitempty"`
	Error string                  `json:"error,omitempty"`
}

func startHost(b *testing.B) *host {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), hostEnv+"=1")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	h := &host{cmd: cmd, in: in, out: bufio.NewReader(out)}
	b.Cleanup(func() {
		_ = in.Close() // the host stops its kernels and exits
		_ = cmd.Wait()
	})
	return h
}

func (h *host) call(req hostRequest) (*hostAnswer, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := h.in.Write(append(data, '\n')); err != nil {
		return nil, fmt.Errorf("the kernel host: %w", err)
	}
	line, err := h.out.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("the kernel host: %w", err)
	}
	var a hostAnswer
	if err := json.Unmarshal(line, &a); err != nil {
		return nil, fmt.Errorf("the kernel host answered %q: %w", line, err)
	}
	if a.Error != "" {
		return nil, errors.New(a.Error)
	}
	return &a, nil
}

func (h *host) start(id, ip string) (*jupyter.ConnectionInfo, error) {
	a, err := h.call(hostRequest{Op: "start", ID: id, IP: ip})
	if err != nil {
		return nil, err
	}
	return a.Info, nil
}

func (h *host) stop(id string) error {
	_, err := h.call(hostRequest{Op: "stop", ID: id})
	return err
}

// runHost serves host requests until stdin closes, then stops every kernel.
func runHost(in io.Reader, out io.Writer) int {
	debug.SetGCPercent(50) // as cmd/fake-kernel
	kernels := map[string]*fakekernel.Kernel{}
	defer func() {
		for _, k := range kernels {
			_ = k.Close()
		}
	}()
	enc := json.NewEncoder(out)
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		var req hostRequest
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			_ = enc.Encode(hostAnswer{Error: err.Error()})
			continue
		}
		switch req.Op {
		case "start":
			info, k, err := startKernel(req.IP)
			if err != nil {
				_ = enc.Encode(hostAnswer{Error: err.Error()})
				continue
			}
			kernels[req.ID] = k
			_ = enc.Encode(hostAnswer{Info: info})
		case "stop":
			if k := kernels[req.ID]; k != nil {
				_ = k.Close()
				delete(kernels, req.ID)
			}
			_ = enc.Encode(hostAnswer{})
		default:
			_ = enc.Encode(hostAnswer{Error: "unknown op " + req.Op})
		}
	}
	return 0
}

// startKernel starts a fake kernel on ip with free ports there, trying fresh ports when one
// was taken meanwhile.
func startKernel(ip string) (*jupyter.ConnectionInfo, *fakekernel.Kernel, error) {
	var err error
	for range 3 {
		var ports []int
		if ports, err = kerneltest.FreePorts(ip, 5); err != nil {
			return nil, nil, err
		}
		info := &jupyter.ConnectionInfo{
			IP: ip, Transport: "tcp",
			ShellPort: ports[0], IOPubPort: ports[1], StdinPort: ports[2], ControlPort: ports[3], HBPort: ports[4],
			Key: kerneltest.NewKey(), SignatureScheme: jupyter.SignatureScheme, KernelName: "fake",
		}
		var k *fakekernel.Kernel
		if k, err = fakekernel.Start(info, fakekernel.Options{}); err == nil {
			return info, k, nil
		}
	}
	return nil, nil, err
}
