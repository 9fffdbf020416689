// Command devcluster is what `make up` and `make down` run: it starts the whole system on this
// machine (see internal/devcluster) and leaves it running, or stops it.
//
//	go run ./hack/devcluster up   [flags]
//	go run ./hack/devcluster down [flags]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/elastic-jupyter/elastic-jupyter/internal/devcluster"
)

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "up" && os.Args[1] != "down") {
		fmt.Fprintln(os.Stderr, "usage: devcluster up|down [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var cfg devcluster.Config
	fs.StringVar(&cfg.Dir, "dir", ".dev", "state directory: pki, etcd data, pids, logs, env")
	fs.StringVar(&cfg.ToolsBin, "tools-bin", filepath.Join(os.Getenv("HOME"), ".cache", "elastic-jupyter", "bin"), "where hack/tools.sh put etcd, kube-* and kubectl")
	fs.StringVar(&cfg.Root, "root", ".", "this repository")
	fs.StringVar(&cfg.ProjectBin, "bin", "bin", "where make build put elastic-jupyter and kernel-launcher")
	fs.IntVar(&cfg.APIPort, "api-port", 6443, "kube-apiserver's port on 127.0.0.1")
	fs.IntVar(&cfg.EtcdPort, "etcd-port", 2379, "etcd's client port on 127.0.0.1 (the peer port is the next one)")
	fs.IntVar(&cfg.WebhookPort, "webhook-port", 9443, "the webhook's port on 127.0.0.1")
	fs.IntVar(&cfg.ControllerMetricsPort, "metrics-port", 8080, "the controller's metrics port (the webhook's is the next but one)")
	fs.IntVar(&cfg.ControllerHealthPort, "health-port", 8081, "the controller's health port (the webhook's is the next but one)")
	fs.IntVar(&cfg.GPUs, "gpus", 2, "fake GPUs on the GPU node")
	fs.IntVar(&cfg.CPUs, "cpus", 0, "cpu capacity of each node, in cores (0: the host's CPU count)")
	fs.IntVar(&cfg.Pods, "pods", 0, "pod capacity of each node (0: 110)")
	fs.StringVar(&cfg.RootfsDir, "rootfs", "", "the JupyterLab 4 root filesystem the stock Jupyter image runs from (default: where hack/rootfs.sh builds it)")
	_ = fs.Parse(os.Args[2:])

	if os.Args[1] == "down" {
		if err := devcluster.Down(cfg.Dir, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "down:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cl, err := devcluster.Up(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "up:", err)
		fmt.Fprintln(os.Stderr, "up: what started keeps running; `make down` stops it, `make up` retries")
		os.Exit(1)
	}
	cl.PrintWelcome(os.Stdout)
}
