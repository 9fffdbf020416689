package controller_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// waitPodEvent waits on w for an event of type typ.
func waitPodEvent(b *testing.B, w watch.Interface, typ watch.EventType) *corev1.Pod {
	b.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatal("the watch ended")
			}
			if ev.Type == typ {
				return ev.Object.(*corev1.Pod)
			}
		case <-timeout:
			b.Fatalf("no %s pod event", typ)
		}
	}
}

// BenchmarkKernelToPod measures a JupyterKernel's creation until its pod exists (Secret
// drawn, kernelspec and template read, pod created): the controller's share of a kernel
// start.
func BenchmarkKernelToPod(b *testing.B) {
	ctx := context.Background()
	t := &testing.T{}
	ns := newNamespace(t)
	w, err := k8s.Watch(ctx, &corev1.PodList{}, client.InNamespace(ns), client.HasLabels{ejv1.LabelKernelID})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	i := 0
	for b.Loop() {
		i++
		k := kernelFixture(t, ns, fmt.Sprintf("%08x-0000-4000-8000-%012x", i, time.Now().UnixNano()&0xffffffffffff))
		if err := k8s.Create(ctx, k); err != nil {
			b.Fatal(err)
		}
		waitPodEvent(b, w, watch.Added)
	}
}

// BenchmarkSuspendResume measures a suspend (pod deleted) followed by a resume (a fresh pod
// created), as the gateway's culler and the next cell cause.
func BenchmarkSuspendResume(b *testing.B) {
	ctx := context.Background()
	t := &testing.T{}
	ns := newNamespace(t)
	k := kernelFixture(t, ns, "bbbbbbbb-0000-4000-8000-000000000001")
	w, err := k8s.Watch(ctx, &corev1.PodList{}, client.InNamespace(ns), client.MatchingLabels{ejv1.LabelKernelID: k.Name})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	if err := k8s.Create(ctx, k); err != nil {
		b.Fatal(err)
	}
	waitPodEvent(b, w, watch.Added)
	setSuspend := func(v bool) {
		for {
			if err := k8s.Get(ctx, client.ObjectKeyFromObject(k), k); err != nil {
				b.Fatal(err)
			}
			k.Spec.Suspend = v
			if err := k8s.Update(ctx, k); err == nil {
				return
			}
		}
	}
	for b.Loop() {
		setSuspend(true)
		waitPodEvent(b, w, watch.Deleted)
		setSuspend(false)
		waitPodEvent(b, w, watch.Added)
	}
}
