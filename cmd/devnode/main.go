// Command devnode runs a development node: a Node registered with a real API server whose
// pods run as local processes (see package devnode). It is for developing and testing
// elastic-jupyter on a machine without a container runtime (`make up`, the tests); it is not
// part of the product's image.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/elastic-jupyter/elastic-jupyter/devnode"
	"github.com/elastic-jupyter/elastic-jupyter/internal/cliflag"
	"github.com/elastic-jupyter/elastic-jupyter/internal/loglevel"
)

func main() {
	// devnode re-executes this binary to set up each container; the helper never returns.
	devnode.RunHelperIfRequested()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintf(os.Stderr, "devnode: %v\n", err)
		os.Exit(1)
	}
}

// run parses args, checks the options and runs the node until ctx ends.
func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devnode", flag.ContinueOnError)
	var o devnode.Options
	fs.StringVar(&o.NodeName, "node-name", "", "name of the Node to register (required)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	fs.StringVar(&o.Root, "root", "", "state directory: pod volumes, logs, services.json (default $TMPDIR/elastic-jupyter-devnode/<node>)")
	fs.IntVar(&o.GPUs, "gpus", 0, "fake GPUs per GPU resource (devices GPU-<node>-0, ...)")
	gpuResources := cliflag.List[corev1.ResourceName]{Comma: true}
	labels := cliflag.List[string]{Comma: true}
	resources := cliflag.List[string]{Comma: true}
	var taints, imageMaps, imageRoots cliflag.List[string]
	fs.Var(&gpuResources, "gpu-resource", "extended resource the fake GPUs are advertised as (repeatable or a comma list, e.g. nvidia.com/mig-1g.10gb; default nvidia.com/gpu)")
	cpu := fs.String("cpu", "", "cpu capacity (default: the host's CPUs)")
	memory := fs.String("memory", "", "memory capacity (default: the host's memory)")
	fs.IntVar(&o.Pods, "pods", 110, "pod capacity")
	fs.Var(&resources, "resource", "extra extended resource NAME=QUANTITY (repeatable)")
	fs.Var(&labels, "label", "node label KEY=VALUE (repeatable)")
	fs.Var(&taints, "taint", "node taint KEY[=VALUE]:EFFECT (repeatable; 'none' for no taints; default nvidia.com/gpu=present:NoSchedule when --gpus > 0)")
	fs.Var(&imageMaps, "image-map", "IMAGE_OR_PREFIX=DIR: run pods of that image with DIR's files laid over the host's root filesystem (repeatable)")
	fs.Var(&imageRoots, "image-root", "IMAGE_OR_PREFIX=DIR: run pods of that image with DIR as their whole root filesystem, copy-on-write, as a container runtime does (repeatable; e.g. the JupyterLab rootfs of hack/rootfs.sh)")
	podNet := fs.String("pod-network", devnode.DefaultPodNetwork.String(), "range of pod IPs")
	svcNet := fs.String("service-network", devnode.DefaultServiceNetwork.String(), "range of Service addresses")
	fs.StringVar(&o.LockDir, "lock-dir", "", "directory of the host-wide address locks (default $TMPDIR/elastic-jupyter-devnode-addresses)")
	var qps float64
	fs.Float64Var(&qps, "kube-api-qps", 0, "requests a second to the API server, as the kubelet's flag (default 50)")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", 0, "bursts of requests to the API server, as the kubelet's flag (default 100)")
	fs.DurationVar(&o.HeartbeatInterval, "heartbeat-interval", 0, "how often the node Lease is renewed (default 5s)")
	fs.DurationVar(&o.StatusInterval, "status-interval", 0, "how often the node status is reported (default 10s)")
	fs.DurationVar(&o.RestartBackoff, "restart-backoff", 0, "first delay before restarting a failed container (default 1s)")
	fs.DurationVar(&o.MaxRestartBackoff, "max-restart-backoff", 0, "longest delay before restarting a failed container (default 1m)")
	fs.DurationVar(&o.ShutdownGracePeriod, "shutdown-grace-period", 0, "how long containers get to stop when devnode stops (default 5s)")
	level := loglevel.Var(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: devnode takes flags only", fs.Args())
	}
	o.KubeAPIQPS = float32(qps)
	o.Log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level.Level}))
	o.GPUResources = gpuResources.Values
	if err := parseQuantities(&o, *cpu, *memory, resources.Values); err != nil {
		return err
	}
	if err := parseNodeShape(&o, labels.Values, taints.Values); err != nil {
		return err
	}
	if err := parseImages(&o, imageMaps.Values, imageRoots.Values); err != nil {
		return err
	}
	var err error
	if o.PodNetwork, err = netip.ParsePrefix(*podNet); err != nil {
		return fmt.Errorf("--pod-network %q: %w (e.g. %s)", *podNet, err, devnode.DefaultPodNetwork)
	}
	if o.ServiceNetwork, err = netip.ParsePrefix(*svcNet); err != nil {
		return fmt.Errorf("--service-network %q: %w (e.g. %s)", *svcNet, err, devnode.DefaultServiceNetwork)
	}
	if err := o.Validate(); err != nil {
		return err
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = *kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return fmt.Errorf("loading the kubeconfig: %w", err)
	}
	agent, err := devnode.New(cfg, o)
	if err != nil {
		return err
	}
	return agent.Run(ctx)
}

// parseQuantities reads --cpu, --memory and --resource.
func parseQuantities(o *devnode.Options, cpu, memory string, resources []string) error {
	for _, q := range []struct {
		flag, s string
		dst     *resource.Quantity
	}{{"--cpu", cpu, &o.CPU}, {"--memory", memory, &o.Memory}} {
		if q.s == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.s)
		if err != nil {
			return fmt.Errorf("%s %q: %w (e.g. 4, 500m, 16Gi)", q.flag, q.s, err)
		}
		*q.dst = v
	}
	for _, r := range resources {
		name, qs, ok := strings.Cut(r, "=")
		q, err := resource.ParseQuantity(qs)
		if !ok || err != nil {
			return fmt.Errorf("--resource %q: write NAME=QUANTITY, e.g. example.com/fpga=2", r)
		}
		if o.Resources == nil {
			o.Resources = corev1.ResourceList{}
		}
		o.Resources[corev1.ResourceName(name)] = q
	}
	return nil
}

// parseNodeShape reads --label and --taint.
func parseNodeShape(o *devnode.Options, labels, taints []string) error {
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return fmt.Errorf("--label %q: write KEY=VALUE", l)
		}
		if o.Labels == nil {
			o.Labels = map[string]string{}
		}
		o.Labels[k] = v
	}
	for _, t := range taints {
		if t == "none" {
			o.Taints = []corev1.Taint{}
			continue
		}
		taint, err := devnode.ParseTaint(t)
		if err != nil {
			return fmt.Errorf("--taint: %w", err)
		}
		o.Taints = append(o.Taints, taint)
	}
	return nil
}

// parseImages reads --image-map and --image-root.
func parseImages(o *devnode.Options, maps, roots []string) error {
	for _, m := range maps {
		im, err := devnode.ParseImageMapping(m)
		if err != nil {
			return fmt.Errorf("--image-map: %w", err)
		}
		o.ImageMap = append(o.ImageMap, im)
	}
	for _, m := range roots {
		im, err := devnode.ParseImageRoot(m)
		if err != nil {
			return fmt.Errorf("--image-root: %w", err)
		}
		o.ImageRoot = append(o.ImageRoot, im)
	}
	return nil
}
