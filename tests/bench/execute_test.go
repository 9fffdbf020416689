// Package bench measures execute round trips (`1+1`, request to idle) three ways, on one
// machine, in one run: straight to the kernel over ZeroMQ, through our gateway's websocket, and
// through Jupyter Server's own websocket to a local kernel. Run it with
//
//	go test -run XXX -bench Execute -benchtime 200x ./tests/bench
//
// and it prints a table of medians and ratios after the benchmark lines.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/jupyter/kernelconn"
)

var (
	mu      sync.Mutex
	results = map[string][]time.Duration{}
	order   []string
)

func record(name string, d []time.Duration) {
	mu.Lock()
	defer mu.Unlock()
	if _, ok := results[name]; !ok {
		order = append(order, name)
	}
	results[name] = d // the last (largest) run of a benchmark wins
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(float64(len(s)-1)*p)]
}

func TestMain(m *testing.M) {
	code := m.Run()
	if len(order) > 0 {
		base := percentile(results[order[0]], 0.5)
		fmt.Printf("\nexecute round trip of 1+1 (request to idle), %s\n", time.Now().Format(time.DateOnly))
		fmt.Printf("%-28s %8s %10s %10s %10s\n", "path", "n", "median", "p90", "vs zmq")
		for _, name := range order {
			d := results[name]
			med := percentile(d, 0.5)
			fmt.Printf("%-28s %8d %10s %10s %9.1fx\n", name, len(d), med.Round(10*time.Microsecond),
				percentile(d, 0.9).Round(10*time.Microsecond), float64(med)/float64(base))
		}
	}
	os.Exit(code)
}

// timed runs one execute per iteration and records each duration.
func timed(b *testing.B, name string, run func() error) {
	b.Helper()
	var d []time.Duration
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if err := run(); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(d, 0.5).Microseconds())/1000, "ms/median")
	record(name, d)
}

func BenchmarkExecute(b *testing.B) {
	b.Run("zmq-direct", func(b *testing.B) {
		k := kerneltest.StartIPyKernel(b, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		c, err := kernelconn.Dial(ctx, k.Info, kernelconn.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		if err := c.WaitIOPub(ctx); err != nil {
			b.Fatal(err)
		}
		timed(b, "zmq-direct", func() error {
			res, err := c.Execute(ctx, "1+1")
			if err == nil && res.Status != "ok" {
				err = fmt.Errorf("status %s", res.Status)
			}
			return err
		})
	})
	b.Run("elastic-jupyter-gateway", func(b *testing.B) {
		url := startGateway(b)
		var model map[string]any
		if code := jupytertest.API(b, "POST", url+"/api/kernels", "", map[string]string{"name": "python3"}, &model); code != 201 {
			b.Fatalf("starting a kernel: %d", code)
		}
		ws := jupytertest.DialWS(b, url+"/api/kernels/"+model["id"].(string)+"/channels", "")
		timed(b, "elastic-jupyter-gateway", func() error { return execute(ws) })
	})
	b.Run("jupyter-server-local", func(b *testing.B) {
		js := jupytertest.StartJupyterServer(b, "", "")
		var model map[string]any
		if code := jupytertest.API(b, "POST", js.URL+"/api/kernels", js.Token, map[string]string{"name": "python3"}, &model); code != 201 {
			b.Fatalf("starting a kernel: %d", code)
		}
		ws := jupytertest.DialWS(b, js.URL+"/api/kernels/"+model["id"].(string)+"/channels", js.Token)
		timed(b, "jupyter-server-local", func() error { return execute(ws) })
	})
}

func execute(ws *jupytertest.WSClient) error {
	ex := ws.Execute("1+1", time.Minute)
	if ex.Status != "ok" {
		return fmt.Errorf("status %q", ex.Status)
	}
	return nil
}

// startGateway serves our gateway with the local provisioner and Debian's ipykernel.
func startGateway(b *testing.B) string {
	b.Helper()
	dir := b.TempDir()
	spec, _ := json.Marshal(map[string]any{"argv": kerneltest.IPyKernelArgv, "display_name": "Python 3", "language": "python"})
	if err := os.MkdirAll(filepath.Join(dir, "python3"), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "python3", "kernel.json"), spec, 0o644); err != nil {
		b.Fatal(err)
	}
	prov := &gateway.LocalProvisioner{RuntimeDir: b.TempDir(), Env: kerneltest.Env(b.TempDir())}
	g := gateway.New(gateway.Options{
		Provisioner: prov, Specs: &gateway.DirSpecSource{Dirs: []string{dir}},
		Settings: gateway.StaticSettings{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Serve(ctx, l) }()
	b.Cleanup(func() {
		cancel()
		<-done
		prov.Close()
	})
	return "http://" + l.Addr().String()
}
