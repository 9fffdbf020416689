package main

import (
	"context"
	"flag"

	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
	"github.com/elastic-jupyter/elastic-jupyter/webhook"
)

func init() {
	register("webhook", "serve the admission webhooks (kernel pod mutation, validation, team policy)", runWebhook)
}

func runWebhook(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	var o webhook.Options
	fs.StringVar(&o.Host, "host", "", "address the webhook serves HTTPS on (default: all)")
	fs.IntVar(&o.Port, "port", webhook.DefaultPort, "port the webhook serves HTTPS on")
	fs.StringVar(&o.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding tls.crt and tls.key (a rotation is picked up without a restart)")
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "address of the metrics endpoint (0 turns it off)")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz (0 turns it off)")
	fs.StringVar(&o.PolicyNamespace, "policy-namespace", "", "namespace of the team policy ConfigMap (default: this pod's, from POD_NAMESPACE or the service account)")
	fs.StringVar(&o.PolicyConfigMap, "policy-configmap", webhook.DefaultPolicyConfigMap, "name of the team policy ConfigMap (key "+webhook.PolicyKey+")")
	fs.StringVar(&o.Mutate.LauncherImage, "launcher-image", version.Image(), "image whose kernel-launcher the init container copies into kernel pods")
	kubeconfig := fs.String("kubeconfig", "", "a kubeconfig file (default: $KUBECONFIG, else in-cluster)")
	logFlags := bindZapFlags(fs)
	if err := logFlags.parse(args); err != nil {
		return err
	}
	if o.PolicyNamespace == "" {
		o.PolicyNamespace = podNamespace()
	}
	if err := o.Validate(); err != nil {
		return err
	}
	cfg, err := restConfig(*kubeconfig)
	if err != nil {
		return err
	}
	mgr, err := webhook.NewManager(cfg, o)
	if err != nil {
		return err
	}
	if err := webhook.Register(mgr, o); err != nil {
		return err
	}
	ctrl.Log.WithName("webhook").Info("starting", "version", version.Version, "port", o.Port,
		"policy", o.PolicyNamespace+"/"+o.PolicyConfigMap, "launcherImage", o.Mutate.LauncherImage)
	return mgr.Start(ctx)
}
