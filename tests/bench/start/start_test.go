package start

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/devcluster"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter"
)

// The cell every kernel runs first, and the output that ends the measurement.
const (
	cell       = "print(1)"
	cellOutput = "1\n"
)

// start is one kernel's start, its moments measured from just before the POST.
type start struct {
	id        string
	begin     time.Time     // just before the POST
	posted    time.Duration // POST /api/kernels answered 201
	steps     [numSteps]time.Duration
	listening time.Duration // the kernel's shell and heartbeat ports accept connections (probed by us)
	output    time.Duration // the cell's stdout arrived on the websocket
	err       error
}

// controlPlane is the control plane's part: POST to the kernel's container running.
func (s *start) controlPlane() time.Duration { return s.steps[stepRunning] }

// kernelProcess is the kernel process's part: its container running to the first output.
func (s *start) kernelProcess() time.Duration { return s.output - s.steps[stepRunning] }

// startOne starts a kernel of spec through the gateway the way a notebook does when a user
// runs a cell in a new notebook: POST, the websocket at once, the cell as its first message;
// it returns once the cell's output arrived. probe also times when the kernel's ports accept
// connections.
func (s *system) startOne(ctx context.Context, spec string, probe bool) *start {
	t0 := time.Now()
	r := &start{begin: t0}
	code, body, err := s.gateway.do(ctx, "POST", "/api/kernels", `{"name":`+strconv.Quote(spec)+`}`)
	r.posted = time.Since(t0)
	if err != nil || code != http.StatusCreated {
		r.err = fmt.Errorf("POST /api/kernels: %d %s %v", code, body, err)
		return r
	}
	var model struct {
		ID             string `json:"id"`
		ExecutionState string `json:"execution_state"`
	}
	if err := json.Unmarshal(body, &model); err != nil || model.ID == "" {
		r.err = fmt.Errorf("POST /api/kernels answered %s: %v", body, err)
		return r
	}
	r.id = model.ID
	var (
		listened time.Time
		wg       sync.WaitGroup
	)
	pctx, stopProbe := context.WithCancel(ctx)
	if probe {
		wg.Add(1)
		go func() {
			defer wg.Done()
			listened = s.probeListening(pctx, r.id)
		}()
	}
	err = s.gateway.firstOutput(ctx, r.id)
	done := time.Now()
	stopProbe()
	wg.Wait()
	if err != nil {
		r.err = fmt.Errorf("kernel %s: %w", r.id, err)
		return r
	}
	r.output = done.Sub(t0)
	if !listened.IsZero() {
		r.listening = listened.Sub(t0)
	}
	// The watches may see the last steps a little after the output arrived.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_ = s.track.waitFor(wctx, r.id, func(tl timeline) bool {
		return !tl.at[stepRunning].IsZero() && !tl.at[stepKernelIP].IsZero() && !tl.at[stepReady].IsZero()
	})
	tl := s.track.timeline(r.id)
	for i, at := range tl.at {
		if !at.IsZero() {
			r.steps[i] = at.Sub(t0)
		}
	}
	return r
}

// probeListening returns when the kernel's shell and heartbeat ports first accept a TCP
// connection (what the gateway waits for before it connects), probing every 5 ms from the
// moment the pod has an IP.
func (s *system) probeListening(ctx context.Context, id string) time.Time {
	ip, err := s.track.podIP(ctx, s.kube, devcluster.TeamNamespace, id)
	if err != nil {
		return time.Time{}
	}
	secret, err := s.kube.CoreV1().Secrets(devcluster.TeamNamespace).Get(ctx, ejv1.ConnectionSecretName(id), metav1.GetOptions{})
	if err != nil {
		return time.Time{}
	}
	info, err := jupyter.ParseConnectionInfo(secret.Data[ejv1.ConnectionFileKey])
	if err != nil {
		return time.Time{}
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		ok := true
		for _, port := range []int{info.ShellPort, info.HBPort} {
			c, err := net.DialTimeout("tcp", net.JoinHostPort(ip, strconv.Itoa(port)), time.Second)
			if err != nil {
				ok = false
				break
			}
			_ = c.Close()
		}
		if ok {
			return time.Now()
		}
		select {
		case <-ctx.Done():
			return time.Time{}
		case <-tick.C:
		}
	}
}

// firstOutput opens the kernel's websocket, sends the cell as the first message and waits for
// its stdout; the gateway holds the cell until the kernel runs.
func (g *gatewayClient) firstOutput(ctx context.Context, id string) error {
	h := http.Header{}
	h.Set("Authorization", "token "+g.token)
	url := strings.Replace(g.base, "http://", "ws://", 1) + "/api/kernels/" + id + "/channels"
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, url, h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return fmt.Errorf("opening the websocket: %w", err)
	}
	defer ws.Close()
	stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
	defer stop()
	req, err := jupyter.NewMessage("execute_request", jupyter.NewID(), "bench",
		map[string]any{"code": cell, "silent": false, "store_history": true, "allow_stdin": false}, nil)
	if err != nil {
		return err
	}
	req.Channel = jupyter.ChannelShell
	data, err := jupyter.EncodeWSJSON(req)
	if err != nil {
		return err
	}
	if err := ws.WriteMessage(websocket.TextMessage, data); err != nil {
		return fmt.Errorf("sending the cell: %w", err)
	}
	var stderr []string
	replied, idle := false, false
	for {
		typ, data, err := ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return fmt.Errorf("waiting for the output of %s (the gateway said %q): %w", cell, stderr, err)
		}
		var m *jupyter.Message
		if typ == websocket.TextMessage {
			m, err = jupyter.DecodeWSJSON(data, jupyter.DefaultLimits)
		} else {
			m, err = jupyter.DecodeWSBinary(data, jupyter.DefaultLimits)
		}
		if err != nil || m.Parent().MsgID != req.Header.MsgID {
			continue
		}
		switch m.Header.MsgType {
		case "stream":
			var st struct{ Name, Text string }
			_ = json.Unmarshal(m.Content, &st)
			if st.Name == "stderr" {
				stderr = append(stderr, strings.TrimSpace(st.Text))
				continue
			}
			if st.Text != cellOutput {
				return fmt.Errorf("%s printed %q", cell, st.Text)
			}
			return nil
		case "error":
			return fmt.Errorf("%s raised: %s", cell, m.Content)
		case "execute_reply":
			replied = true // the reply (shell) may come before the output (iopub)
		case "status":
			if st, _ := m.ExecutionState(); st == "idle" {
				idle = true // the output comes before idle, both on iopub
			}
		}
		if replied && idle {
			return fmt.Errorf("%s ran without printing (the gateway said %q)", cell, stderr)
		}
	}
}

func listByKernel(id string) metav1.ListOptions {
	return metav1.ListOptions{LabelSelector: kernelLabel + "=" + id}
}

// BenchmarkStart starts one python3 kernel (the quick start's ipykernel) at a time, b.N
// times, each until its first cell's output, and splits each start into the control plane's
// part and the kernel process's.
func BenchmarkStart(b *testing.B) {
	s := theSystem(b)
	var runs []*start
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		r := s.startOne(ctx, "python3", true)
		cancel()
		b.StopTimer()
		var ids []string
		if r.id != "" {
			ids = append(ids, r.id)
		}
		cerr := s.cleanUp(ids)
		if r.err != nil {
			failed = true
			b.Fatal(r.err)
		}
		if cerr != nil {
			failed = true
			b.Fatal("cleaning up:", cerr)
		}
		runs = append(runs, r)
		b.StartTimer()
	}
	b.StopTimer()
	out, cp := make([]time.Duration, len(runs)), make([]time.Duration, len(runs))
	for i, r := range runs {
		out[i], cp[i] = r.output, r.controlPlane()
	}
	b.ReportMetric(percentile(out, 0.5).Seconds(), "s/first-output-p50")
	b.ReportMetric(percentile(cp, 0.5).Seconds(), "s/control-plane-p50")
	startRuns = runs
}

// BenchmarkBurst starts b.N fake kernels at once through the gateway, each sending its cell
// at once, and waits for every output; then it shuts them all down. Any kernel that does not
// print fails the benchmark.
func BenchmarkBurst(b *testing.B) {
	s := theSystem(b)
	n := b.N
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runs := make([]*start, n)
	var wg sync.WaitGroup
	b.ResetTimer()
	t0 := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runs[i] = s.startOne(ctx, FakeSpec, false)
		}()
	}
	wg.Wait()
	b.StopTimer()
	var wall time.Duration // the first POST to the last output
	for _, r := range runs {
		if r.err == nil {
			wall = max(wall, r.begin.Add(r.output).Sub(t0))
		}
	}
	var ids []string
	var errs []error
	for _, r := range runs {
		if r.id != "" {
			ids = append(ids, r.id)
		}
		if r.err != nil {
			errs = append(errs, r.err)
		}
	}
	c0 := time.Now()
	cerr := s.cleanUp(ids)
	res := &burst{n: n, runs: runs, errors: len(errs), wall: wall, cleanup: time.Since(c0)}
	burstResult = res
	b.ReportMetric(float64(len(errs)), "errors")
	b.ReportMetric(wall.Seconds(), "s/wall")
	if ok := res.outputs(); len(ok) > 0 {
		b.ReportMetric(percentile(ok, 0.95).Seconds(), "s/first-output-p95")
	}
	if len(errs) > 0 {
		failed = true
		shown := errs[:min(len(errs), 5)]
		b.Fatalf("%d of %d kernels did not print (first %d): %v", len(errs), n, len(shown), shown)
	}
	if cerr != nil {
		failed = true
		b.Fatal("cleaning up:", cerr)
	}
}
