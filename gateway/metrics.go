package gateway

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are what the gateway measures of its kernels' lives, labelled by the gateway's own
// namespace and name (never a user or a kernel): how long starts and resumes take, and the
// culls by policy and reason. The GPU time held and given back is counted by the controller,
// which sees every gateway's kernels.
type metrics struct {
	registry *prometheus.Registry
	starts   prometheus.Observer
	resumes  prometheus.Observer
	culls    *prometheus.CounterVec
}

var durationBuckets = []float64{0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600}

func newMetrics(namespace, name string) *metrics {
	labels := prometheus.Labels{"namespace": namespace, "gateway": name}
	m := &metrics{registry: prometheus.NewRegistry()}
	starts := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "elastic_jupyter_kernel_start_seconds", Help: "Time from a kernel's start request to the kernel running (waiting for a GPU included).",
		Buckets: durationBuckets, ConstLabels: labels,
	})
	resumes := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "elastic_jupyter_kernel_resume_seconds", Help: "Time from the message that resumed a suspended kernel to the kernel running with its variables back.",
		Buckets: durationBuckets, ConstLabels: labels,
	})
	m.culls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "elastic_jupyter_culls_total", Help: "Kernels culled, by cull policy and reason (idle, dead).", ConstLabels: labels,
	}, []string{"policy", "reason"})
	m.registry.MustRegister(starts, resumes, m.culls, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	m.starts, m.resumes = starts, resumes
	return m
}

// observeUp records how long a start or a resume took.
func (m *metrics) observeUp(resume bool, d time.Duration) {
	if resume {
		m.resumes.Observe(d.Seconds())
	} else {
		m.starts.Observe(d.Seconds())
	}
}

// MetricsHandler serves the gateway's metrics in Prometheus's format.
func (g *Gateway) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(g.metrics.registry, promhttp.HandlerOpts{})
}
