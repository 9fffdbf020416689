package controller

import (
	"context"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// The outcome the project exists for, measured: GPU time held by kernels (busy, running a
// cell, or idle) and GPU time given back by suspended kernels, by team namespace, gateway and
// GPU resource (never by user or kernel: the number of series stays bounded). The controller
// counts them from the kernels' status (the GPUs a kernel's pod holds, its execution state
// as its gateway reports it, the GPUs it gave back when suspended), every accountingPeriod.
var (
	gpuSecondsHeld = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "elastic_jupyter_gpu_seconds_held_total",
		Help: "GPU-seconds held by kernel pods, by execution state (busy: running a cell; idle).",
	}, []string{"namespace", "gateway", "resource", "state"})
	gpuSecondsGivenBack = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "elastic_jupyter_gpu_seconds_given_back_total",
		Help: "GPU-seconds given back by suspended kernels: the GPUs each held, for as long as it stays suspended.",
	}, []string{"namespace", "gateway", "resource"})
	kernelsByPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "elastic_jupyter_kernels",
		Help: "Kernels by phase (Pending, Starting, Running, Suspended, Failed, Succeeded).",
	}, []string{"namespace", "gateway", "phase"})
	gpuWaitSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "elastic_jupyter_gpu_wait_seconds",
		Help:    "Time kernel pods waited in the GPU queue before the scheduler got them.",
		Buckets: []float64{0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600},
	}, []string{"namespace", "resource"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(gpuSecondsHeld, gpuSecondsGivenBack, kernelsByPhase, gpuWaitSeconds)
}

// accountingPeriod is how often the GPU time is counted.
const accountingPeriod = time.Second

// gpuAccounting counts GPU time and keeps, per gateway, the given-back GPU-seconds its
// status has not recorded yet.
type gpuAccounting struct {
	client.Reader
	log logr.Logger

	mu      sync.Mutex
	pending map[types.NamespacedName]float64 // given-back GPU-seconds per gateway, not yet in its status
	phases  map[[3]string]bool               // gauge series set last time, to zero those that went
}

func newGPUAccounting(r client.Reader, log logr.Logger) *gpuAccounting {
	return &gpuAccounting{Reader: r, log: log, pending: map[types.NamespacedName]float64{}, phases: map[[3]string]bool{}}
}

// Start implements manager.Runnable: count every accountingPeriod until ctx ends.
func (a *gpuAccounting) Start(ctx context.Context) error {
	t := time.NewTicker(accountingPeriod)
	defer t.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			if err := a.count(ctx, now.Sub(last)); err != nil {
				a.log.Error(err, "counting GPU time")
			}
			last = now
		}
	}
}

// NeedLeaderElection implements manager.LeaderElectionRunnable: one replica counts.
func (a *gpuAccounting) NeedLeaderElection() bool { return true }

// count adds dt of GPU time for every kernel as its status stands now.
func (a *gpuAccounting) count(ctx context.Context, dt time.Duration) error {
	list := &ejv1.JupyterKernelList{}
	if err := a.List(ctx, list); err != nil {
		return err
	}
	phases := map[[3]string]float64{}
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range list.Items {
		k := &list.Items[i]
		gw := kernelGateway(k)
		phases[[3]string{k.Namespace, gw.Name, string(k.Status.Phase)}]++
		for _, c := range kernelGPUTime(k, dt) {
			if c.givenBack {
				gpuSecondsGivenBack.WithLabelValues(k.Namespace, gw.Name, c.resource).Add(c.seconds)
				if gw.Name != "" {
					a.pending[gw] += c.seconds
				}
			} else {
				gpuSecondsHeld.WithLabelValues(k.Namespace, gw.Name, c.resource, c.state).Add(c.seconds)
			}
		}
	}
	for key := range a.phases {
		if _, still := phases[key]; !still {
			kernelsByPhase.WithLabelValues(key[0], key[1], key[2]).Set(0)
		}
	}
	a.phases = map[[3]string]bool{}
	for key, n := range phases {
		kernelsByPhase.WithLabelValues(key[0], key[1], key[2]).Set(n)
		a.phases[key] = true
	}
	return nil
}

// takeGivenBack returns the whole given-back GPU-seconds of gateway gw not yet recorded in
// its status, and forgets them (the fraction of a second waits for the next time).
func (a *gpuAccounting) takeGivenBack(gw types.NamespacedName) int64 {
	if a == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	whole := int64(a.pending[gw])
	a.pending[gw] -= float64(whole)
	return whole
}

// gpuTime is a kernel's share of GPU time over one period.
type gpuTime struct {
	resource  string
	state     string // busy or idle, for held time
	givenBack bool
	seconds   float64
}

// kernelGPUTime is what kernel k adds over dt: its pod's GPUs, held busy or idle while it
// runs (a pod that starts holds them idle), or the GPUs it gave back while it is suspended.
func kernelGPUTime(k *ejv1.JupyterKernel, dt time.Duration) []gpuTime {
	resource := k.Status.GPUResource
	if resource == "" {
		resource = "gpu"
	}
	switch {
	case k.Status.Phase == ejv1.KernelSuspended && k.Status.SuspendedGPUs > 0:
		return []gpuTime{{resource: resource, givenBack: true, seconds: float64(k.Status.SuspendedGPUs) * dt.Seconds()}}
	case k.Status.GPUs > 0:
		state := "idle"
		if k.Status.ExecutionState == "busy" {
			state = "busy"
		}
		return []gpuTime{{resource: resource, state: state, seconds: float64(k.Status.GPUs) * dt.Seconds()}}
	}
	return nil
}

// kernelGateway is the gateway that manages k.
func kernelGateway(k *ejv1.JupyterKernel) types.NamespacedName {
	if g := k.Spec.Gateway; g != nil && g.Name != "" {
		return types.NamespacedName{Namespace: nonEmpty(g.Namespace, k.Namespace), Name: g.Name}
	}
	return types.NamespacedName{Namespace: nonEmpty(k.Annotations[ejv1.AnnotationGatewayNamespace], k.Namespace), Name: k.Labels[ejv1.LabelGateway]}
}
