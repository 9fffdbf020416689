package main

import (
	"context"
	"flag"

	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/elastic-jupyter/elastic-jupyter/controller"
	"github.com/elastic-jupyter/elastic-jupyter/internal/cliflag"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

func init() {
	register("controller", "run the controller (notebooks, gateways, kernels, kernelspecs, templates)", runController)
}

func runController(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("controller", flag.ContinueOnError)
	metricsAddr := fs.String("metrics-bind-address", ":8080", "address of the metrics endpoint (0 turns it off)")
	probeAddr := fs.String("health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	leaderElect := fs.Bool("leader-elect", true, "elect one active controller among the replicas")
	leaderNS := fs.String("leader-election-namespace", "", "namespace of the leader election Lease (default: the pod's)")
	kubeconfig := fs.String("kubeconfig", "", "a kubeconfig file (default: in-cluster or $KUBECONFIG)")
	image := fs.String("image", version.Image(), "image of gateways whose spec.image is empty")
	notebookImage := fs.String("notebook-image", controller.DefaultNotebookImage, "image of notebook servers whose template names none")
	var gpus cliflag.List[corev1.ResourceName]
	noQueue := fs.Bool("no-gpu-queue", false, "release kernel pods that wait for GPUs to the scheduler at once, instead of first come, first served (for clusters whose autoscaler must see every pending pod)")
	fs.Var(&gpus, "gpu-resource", "a resource name counted as GPUs besides those containing \"gpu\", such as nvidia.com/mig-1g.10gb (repeatable)")
	logFlags := bindZapFlags(fs)
	if err := logFlags.parse(args); err != nil {
		return err
	}

	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	mgr, err := controller.NewManager(cfg, controller.ManagerOptions{
		MetricsAddr: *metricsAddr, ProbeAddr: *probeAddr,
		LeaderElection: *leaderElect, LeaderElectionNamespace: *leaderNS,
	})
	if err != nil {
		return err
	}
	if err := controller.SetupWithManager(mgr, controller.Options{GatewayImage: *image, NotebookImage: *notebookImage, GPUResources: gpus.Values, NoGPUQueue: *noQueue}); err != nil {
		return err
	}
	ctrl.Log.WithName("controller").Info("starting", "version", version.Version, "gatewayImage", *image, "notebookImage", *notebookImage)
	return mgr.Start(ctx)
}
