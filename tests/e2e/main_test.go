// Package e2e drives the whole system as `make up` starts it — real control plane, devnodes with
// fake GPUs, controller, webhook, the quick start's gateway and notebook server — the way a user
// would: through the stock notebook server's REST API and websockets, and a real browser.
package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/internal/devcluster"
	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

var (
	cluster *devcluster.Cluster
	env     *devcluster.Env
)

// ArtifactsDir keeps what the tests produce for people to look at (the browser screenshot).
var ArtifactsDir = filepath.Join(testenv.RepoRoot(), "tests", "e2e", "artifacts")

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "elastic-jupyter-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ports, err := kerneltest.FreePorts("127.0.0.1", 8)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cfg := devcluster.Config{
		Dir: dir, ToolsBin: testenv.BinDir(), Root: testenv.RepoRoot(),
		ProjectBin: filepath.Join(dir, "bin"),
		APIPort:    ports[0], EtcdPort: ports[1], WebhookPort: ports[3],
		ControllerMetricsPort: ports[4], ControllerHealthPort: ports[5],
		GPUs: 2, NodeName: "e2e", Attached: true, // as `make up`
	}
	if err := devcluster.Build(testenv.RepoRoot(), cfg.ProjectBin); err != nil {
		fmt.Fprintln(os.Stderr, "building:", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cluster, err = devcluster.Up(ctx, cfg, os.Stdout)
	if err == nil {
		env, err = cluster.Env(ctx)
	}
	code := 1
	if err != nil {
		fmt.Fprintln(os.Stderr, "make up failed:", err)
		dumpLogs(dir)
	} else {
		code = m.Run()
		if code != 0 {
			dumpLogs(dir)
		}
	}
	if cluster != nil {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "make down failed:", err)
			code = 1
		}
	}
	if code == 0 {
		_ = os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "state and logs kept in", dir)
	}
	return code
}

// dumpLogs prints the tail of every component's log.
func dumpLogs(dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "logs", "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(os.Stderr, "==== %s\n%s\n", f, data)
	}
}
