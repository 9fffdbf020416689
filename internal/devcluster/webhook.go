package devcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

// upWebhook serves the webhook on 127.0.0.1 with a certificate from the cluster's CA and
// registers the webhook configurations of config/webhook, pointed at it by URL.
func (cl *Cluster) upWebhook(ctx context.Context) error {
	certDir := filepath.Join(cl.cfg.Dir, "pki", "webhook")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return err
	}
	if err := cl.pki.issue("webhook/tls", "elastic-jupyter-webhook", nil, []string{"127.0.0.1", "localhost"}, false); err != nil {
		return err
	}
	metrics, health := cl.cfg.ControllerMetricsPort+2, cl.cfg.ControllerHealthPort+2
	if !cl.running("webhook") {
		if err := cl.checkPorts("webhook", cl.cfg.WebhookPort, metrics, health); err != nil {
			return err
		}
		if err := cl.start(component{name: "webhook", path: cl.project(), args: []string{
			"webhook", "--kubeconfig=" + cl.Kubeconfig, "--host=127.0.0.1",
			"--port=" + strconv.Itoa(cl.cfg.WebhookPort), "--cert-dir=" + certDir,
			"--policy-namespace=" + SystemNamespace,
			"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(metrics),
			"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(health),
		}}); err != nil {
			return err
		}
	}
	if err := cl.waitHTTP(ctx, "webhook", "http://127.0.0.1:"+strconv.Itoa(health)+"/readyz", nil); err != nil {
		return err
	}
	manifest, err := cl.webhookConfigurations()
	if err != nil {
		return err
	}
	return cl.kubectlStdin(ctx, manifest, "apply", "--server-side", "--force-conflicts", "-f", "-")
}

// webhookConfigurations rewrites config/webhook/manifests.yaml for the local webhook: each
// service reference becomes https://127.0.0.1:<port><path>, trusted through the cluster's CA.
func (cl *Cluster) webhookConfigurations() (string, error) {
	data, err := os.ReadFile(filepath.Join(cl.cfg.Root, "config", "webhook", "manifests.yaml"))
	if err != nil {
		return "", err
	}
	ca, err := os.ReadFile(cl.pki.path("ca.crt"))
	if err != nil {
		return "", err
	}
	base := "https://127.0.0.1:" + strconv.Itoa(cl.cfg.WebhookPort)
	point := func(c *admissionregistrationv1.WebhookClientConfig) {
		path := ""
		if c.Service != nil && c.Service.Path != nil {
			path = *c.Service.Path
		}
		url := base + path
		c.Service, c.URL, c.CABundle = nil, &url, ca
	}
	var out []string
	for _, doc := range strings.Split(string(data), "\n---") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return "", err
		}
		var obj any
		switch head.Kind {
		case "MutatingWebhookConfiguration":
			m := &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict([]byte(doc), m); err != nil {
				return "", fmt.Errorf("config/webhook: %w", err)
			}
			for i := range m.Webhooks {
				point(&m.Webhooks[i].ClientConfig)
			}
			obj = m
		case "ValidatingWebhookConfiguration":
			v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
				return "", fmt.Errorf("config/webhook: %w", err)
			}
			for i := range v.Webhooks {
				point(&v.Webhooks[i].ClientConfig)
			}
			obj = v
		default:
			continue
		}
		b, err := yaml.Marshal(obj)
		if err != nil {
			return "", err
		}
		out = append(out, string(bytes.TrimSpace(b)))
	}
	return strings.Join(out, "\n---\n") + "\n", nil
}
