package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/elastic-jupyter/elastic-jupyter/gateway"
)

// kubernetesParts are the Kubernetes-backed pieces of a gateway.
type kubernetesParts struct {
	Provisioner gateway.Provisioner
	Specs       gateway.SpecSource
	Settings    gateway.SettingsSource
	// Auth knows the team token (the admin) and every notebook server's own token.
	Auth func(teamToken string) gateway.Authenticator
	// Namespace is the gateway's namespace.
	Namespace string
}

// kubernetesGateway connects to the cluster and follows the gateway's own JupyterGateway.
func kubernetesGateway(ctx context.Context, name, namespace, kubeconfig string, log *slog.Logger) (*kubernetesParts, error) {
	if name == "" {
		return nil, fmt.Errorf("--name is required with --provisioner kubernetes: the name of this gateway's JupyterGateway")
	}
	if namespace == "" {
		namespace = podNamespace()
	}
	if namespace == "" {
		return nil, fmt.Errorf("--namespace is required outside a pod: the namespace of this gateway's JupyterGateway")
	}
	cfg, err := restConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	k, err := gateway.NewKubernetes(ctx, gateway.KubernetesOptions{Config: cfg, Name: name, Namespace: namespace, Log: log})
	if err != nil {
		return nil, err
	}
	go k.Run(ctx)
	return &kubernetesParts{Provisioner: k, Specs: k, Settings: k, Auth: k.Auth, Namespace: namespace}, nil
}
