package chart

import (
	"maps"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// monitoringOn turns on every ServiceMonitor and the Grafana dashboard.
var monitoringOn = map[string]string{
	"controller.metrics.serviceMonitor.enabled": "true",
	"webhook.metrics.serviceMonitor.enabled":    "true",
	"gatewayMetrics.serviceMonitor.enabled":     "true",
	"grafana.dashboard.enabled":                 "true",
}

// serviceMonitor is what the chart sets of a Prometheus Operator ServiceMonitor (the chart's tests
// do not depend on its Go module; the API-server test validates against its CRD).
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port        string `json:"port"`
			Path        string `json:"path,omitempty"`
			Interval    string `json:"interval,omitempty"`
			HonorLabels bool   `json:"honorLabels,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// selects says whether sm's selector selects objects labelled l.
func (sm *serviceMonitor) selects(t *testing.T, l map[string]string) bool {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	require.NoError(t, err, sm.Name)
	return sel.Matches(labels.Set(l))
}

func with(base map[string]string, more map[string]string) map[string]string {
	out := maps.Clone(base)
	maps.Copy(out, more)
	return out
}

// By default the chart renders no object of a CRD the cluster may lack and no dashboard; the
// metrics Services of the controller and the webhook are always there.
func TestMonitoringIsOffByDefault(t *testing.T) {
	for _, files := range [][]string{nil, {filepath.Join(valuesDir, "multi-team.yaml")}} {
		objs := objects(t, render(t, files, nil))
		assert.Empty(t, ofKind[serviceMonitor](t, objs, "ServiceMonitor"), "%v: no ServiceMonitor without the Prometheus Operator", files)
		for _, cm := range ofKind[corev1.ConfigMap](t, objs, "ConfigMap") {
			assert.NotContains(t, cm.Labels, "grafana_dashboard", "%v: %s is no dashboard", files, cm.Name)
			assert.NotContains(t, cm.Data, "elastic-jupyter.json", "%v: %s is no dashboard", files, cm.Name)
		}
		named[corev1.Service](t, objs, "Service", namespace, "ej-elastic-jupyter-controller-metrics")
		named[corev1.Service](t, objs, "Service", namespace, "ej-elastic-jupyter-webhook-metrics")
	}
}

// The controller's and the webhook's ServiceMonitors select their metrics Service, and only it
// of the Services with their labels; its port metrics reaches the container port the binary
// serves its metrics on.
func TestServiceMonitorsScrapeTheControllerAndTheWebhook(t *testing.T) {
	objs := objects(t, render(t, []string{filepath.Join(valuesDir, "multi-team.yaml")}, with(monitoringOn, map[string]string{
		"controller.metrics.serviceMonitor.labels.release": "prom",
		"webhook.metrics.serviceMonitor.labels.release":    "prom",
		"webhook.metrics.serviceMonitor.interval":          "15s",
		"webhook.metricsPort":                              "8181",
	})))
	for _, c := range []struct {
		component, monitor, service, interval string
		port                                  int32
	}{
		{"controller", "ej-elastic-jupyter-controller", "ej-elastic-jupyter-controller-metrics", "30s", 8080},
		{"webhook", "ej-elastic-jupyter-webhook", "ej-elastic-jupyter-webhook-metrics", "15s", 8181},
	} {
		sm := named[serviceMonitor](t, objs, "ServiceMonitor", namespace, c.monitor)
		assert.Equal(t, "prom", sm.Labels["release"], "%s: the labels the Prometheus selects by", c.monitor)
		assert.Equal(t, "Helm", sm.Labels["app.kubernetes.io/managed-by"], c.monitor)
		require.Len(t, sm.Spec.Endpoints, 1, c.monitor)
		ep := sm.Spec.Endpoints[0]
		assert.Equal(t, "metrics", ep.Port, c.monitor)
		assert.Equal(t, c.interval, ep.Interval, c.monitor)

		var scraped []string
		for _, svc := range ofKind[corev1.Service](t, objs, "Service") {
			if svc.Namespace != sm.Namespace || !sm.selects(t, svc.Labels) {
				continue
			}
			for _, p := range svc.Spec.Ports {
				if p.Name == ep.Port {
					scraped = append(scraped, svc.Name)
				}
			}
		}
		assert.Equal(t, []string{c.service}, scraped, "%s scrapes its metrics Service, nothing else", c.monitor)
		svc := named[corev1.Service](t, objs, "Service", namespace, c.service)
		require.Len(t, svc.Spec.Ports, 1, c.service)
		assert.Equal(t, c.port, svc.Spec.Ports[0].Port, c.service)
		assert.Equal(t, "metrics", svc.Spec.Ports[0].TargetPort.StrVal, c.service)

		d := named[appsv1.Deployment](t, objs, "Deployment", namespace, "ej-elastic-jupyter-"+c.component)
		assert.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)), "%s selects the %s pods", c.service, c.component)
		container := d.Spec.Template.Spec.Containers[0]
		assert.Contains(t, container.Ports, corev1.ContainerPort{Name: "metrics", ContainerPort: c.port}, "the %s's container names its metrics port", c.component)
		assert.Contains(t, container.Args, "--metrics-bind-address=:"+strconv.Itoa(int(c.port)), "the %s serves its metrics there", c.component)
	}
	// The GPU metrics' namespace label is a team's: kept, not renamed exported_namespace for the
	// controller's own namespace.
	assert.True(t, named[serviceMonitor](t, objs, "ServiceMonitor", namespace, "ej-elastic-jupyter-controller").Spec.Endpoints[0].HonorLabels)
}

// One ServiceMonitor per team, in the namespace of its gateway (whose Service the controller
// makes there), selecting gateway Services by the labels the controller gives them, on port
// metrics; rendered on the first install too, as it needs none of our CRDs.
func TestGatewayServiceMonitorsOnePerTeam(t *testing.T) {
	set := with(monitoringOn, map[string]string{"gatewayMetrics.serviceMonitor.labels.release": "prom", "gatewayMetrics.serviceMonitor.interval": "1m"})
	multiTeam := []string{filepath.Join(valuesDir, "multi-team.yaml")}
	objs := objects(t, render(t, multiTeam, set))
	gateways := ofKind[ejv1.JupyterGateway](t, objs, "JupyterGateway")
	require.Len(t, gateways, 3)
	var monitors []*serviceMonitor
	for _, sm := range ofKind[serviceMonitor](t, objs, "ServiceMonitor") {
		if sm.Labels[ejv1.LabelComponent] == ejv1.ComponentGateway {
			monitors = append(monitors, sm)
		}
	}
	require.Len(t, monitors, len(gateways), "one ServiceMonitor per team")
	for _, gw := range gateways {
		sm := named[serviceMonitor](t, objs, "ServiceMonitor", gw.Namespace, "ej-elastic-jupyter-gateways")
		assert.Equal(t, gw.Labels["kubeflow.tkestack.io/team"], sm.Labels["kubeflow.tkestack.io/team"], sm.Namespace)
		assert.Equal(t, "prom", sm.Labels["release"], sm.Namespace)
		assert.Equal(t, metav1.LabelSelector{MatchLabels: map[string]string{
			ejv1.LabelComponent: ejv1.ComponentGateway,
			ejv1.LabelManagedBy: ejv1.ManagedBy,
		}}, sm.Spec.Selector, "%s selects the gateway Services as the controller labels them", sm.Namespace)
		assert.True(t, sm.selects(t, map[string]string{
			ejv1.LabelName: "elastic-jupyter", ejv1.LabelComponent: ejv1.ComponentGateway, ejv1.LabelInstance: gw.Name, ejv1.LabelManagedBy: ejv1.ManagedBy,
		}), "%s selects gateway %s's Service", sm.Namespace, gw.Name)
		assert.False(t, sm.selects(t, map[string]string{
			ejv1.LabelName: "elastic-jupyter", ejv1.LabelComponent: ejv1.ComponentNotebook, ejv1.LabelInstance: "alice", ejv1.LabelManagedBy: ejv1.ManagedBy,
		}), "%s leaves notebook Services alone", sm.Namespace)
		require.Len(t, sm.Spec.Endpoints, 1)
		ep := sm.Spec.Endpoints[0]
		assert.Equal(t, "metrics", ep.Port)
		assert.Equal(t, "/metrics", ep.Path)
		assert.Equal(t, "1m", ep.Interval)
		assert.True(t, ep.HonorLabels, "the gateway's own namespace and gateway labels are kept")
	}

	out, err := renderE(t, multiTeam, set)
	require.NoError(t, err)
	first := 0
	for _, sm := range ofKind[serviceMonitor](t, objects(t, out), "ServiceMonitor") {
		if sm.Name == "ej-elastic-jupyter-gateways" {
			first++
		}
	}
	assert.Equal(t, len(gateways), first, "the first install, without our CRDs in the API, renders them too")
}

// gatewayMonitorOf is the rendered ServiceMonitor of the gateways in namespace ns.
func gatewayMonitorOf(t *testing.T, objs []*unstructured.Unstructured, ns string) *serviceMonitor {
	t.Helper()
	return named[serviceMonitor](t, objs, "ServiceMonitor", ns, "ej-elastic-jupyter-gateways")
}
