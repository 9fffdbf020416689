package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/elastic-jupyter/elastic-jupyter/devnode"
)

func init() {
	// devnode re-executes this binary to set up each container; the helper never returns.
	devnode.RunHelperIfRequested()
	register("devnode", "run a development node: pods bound to it run as local processes (not for production)", runDevnode)
}

// repeated is a repeatable flag whose values may also be comma-separated lists.
type repeated []string

func (r *repeated) String() string { return strings.Join(*r, ",") }
func (r *repeated) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*r = append(*r, s)
		}
	}
	return nil
}

// repeatedWhole is a repeatable flag whose values are kept whole.
type repeatedWhole []string

func (r *repeatedWhole) String() string     { return strings.Join(*r, " ") }
func (r *repeatedWhole) Set(v string) error { *r = append(*r, v); return nil }

func runDevnode(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("devnode", flag.ContinueOnError)
	var o devnode.Options
	fs.StringVar(&o.NodeName, "node-name", "", "name of the Node to register (required)")
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)")
	fs.StringVar(&o.Root, "root", "", "state directory: pod volumes, logs, services.json (default $TMPDIR/elastic-jupyter-devnode/<node>)")
	fs.IntVar(&o.GPUs, "gpus", 0, "fake GPUs per GPU resource (devices GPU-<node>-0, ...)")
	var gpuResources, labels, resources repeated
	var taints, imageMaps, imageRoots repeatedWhole
	fs.Var(&gpuResources, "gpu-resource", "extended resource the fake GPUs are advertised as (repeatable or a comma list, e.g. nvidia.com/mig-1g.10gb; default nvidia.com/gpu)")
	cpu := fs.String("cpu", "", "cpu capacity (default: the host's CPUs)")
	memory := fs.String("memory", "", "memory capacity (default: the host's memory)")
	fs.IntVar(&o.Pods, "pods", 110, "pod capacity")
	fs.Var(&resources, "resource", "extra extended resource NAME=QUANTITY (repeatable)")
	fs.Var(&labels, "label", "node label KEY=VALUE (repeatable)")
	fs.Var(&taints, "taint", "node taint KEY[=VALUE]:EFFECT (repeatable; 'none' for no taints; default nvidia.com/gpu=present:NoSchedule when --gpus > 0)")
	fs.Var(&imageMaps, "image-map", "IMAGE_OR_PREFIX=DIR: run pods of that image with DIR's files laid over the host's root filesystem (repeatable)")
	fs.Var(&imageRoots, "image-root", "IMAGE_OR_PREFIX=DIR: run pods of that image with DIR as their whole root filesystem, copy-on-write, as a container runtime does (repeatable; e.g. the JupyterLab rootfs of hack/rootfs.sh)")
	podNet := fs.String("pod-network", "127.0.0.0/24", "loopback range of pod IPs")
	svcNet := fs.String("service-network", "127.0.1.0/24", "loopback range of Service addresses")
	fs.StringVar(&o.LockDir, "lock-dir", "", "directory of the host-wide address locks (default $TMPDIR/elastic-jupyter-devnode-addresses)")
	var qps float64
	fs.Float64Var(&qps, "kube-api-qps", 0, "requests a second to the API server, as the kubelet's flag (default 50)")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", 0, "bursts of requests to the API server, as the kubelet's flag (default 100)")
	fs.DurationVar(&o.HeartbeatInterval, "heartbeat-interval", 0, "how often the node Lease is renewed (default 5s)")
	fs.DurationVar(&o.StatusInterval, "status-interval", 0, "how often the node status is reported (default 10s)")
	fs.DurationVar(&o.RestartBackoff, "restart-backoff", 0, "first delay before restarting a failed container (default 1s)")
	fs.DurationVar(&o.MaxRestartBackoff, "max-restart-backoff", 0, "longest delay before restarting a failed container (default 1m)")
	fs.DurationVar(&o.ShutdownGracePeriod, "shutdown-grace-period", 0, "how long containers get to stop when devnode stops (default 5s)")
	logLevel := fs.String("log-level", "INFO", "DEBUG, INFO, WARN or ERROR")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q: devnode takes flags only", fs.Args())
	}
	o.KubeAPIQPS = float32(qps)
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: use DEBUG, INFO, WARN or ERROR", *logLevel)
	}
	o.Log = slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	for name, q := range map[string]struct {
		s   string
		dst *resource.Quantity
	}{"--cpu": {*cpu, &o.CPU}, "--memory": {*memory, &o.Memory}} {
		if q.s == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.s)
		if err != nil {
			return fmt.Errorf("%s %q: %w (e.g. 4, 500m, 16Gi)", name, q.s, err)
		}
		*q.dst = v
	}
	for _, r := range gpuResources {
		o.GPUResources = append(o.GPUResources, corev1.ResourceName(r))
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
	for _, m := range imageMaps {
		im, err := devnode.ParseImageMapping(m)
		if err != nil {
			return fmt.Errorf("--image-map: %w", err)
		}
		o.ImageMap = append(o.ImageMap, im)
	}
	for _, m := range imageRoots {
		im, err := devnode.ParseImageRoot(m)
		if err != nil {
			return fmt.Errorf("--image-root: %w", err)
		}
		o.ImageRoot = append(o.ImageRoot, im)
	}
	var err error
	if o.PodNetwork, err = netip.ParsePrefix(*podNet); err != nil {
		return fmt.Errorf("--pod-network %q: %w (e.g. 127.0.0.0/24)", *podNet, err)
	}
	if o.ServiceNetwork, err = netip.ParsePrefix(*svcNet); err != nil {
		return fmt.Errorf("--service-network %q: %w (e.g. 127.0.1.0/24)", *svcNet, err)
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
