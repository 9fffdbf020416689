package gateway

import (
	"sync"

	toolscache "k8s.io/client-go/tools/cache"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// kernelEvents fans the cache's JupyterKernel events out to the goroutines waiting for one
// kernel to change (a start, a resume), so they wake on the change rather than poll.
type kernelEvents struct {
	mu      sync.Mutex
	waiters map[string]map[chan struct{}]struct{}
}

// subscribe returns a channel that receives (coalesced) a value after each change of kernel
// id, and the function that ends the subscription.
func (e *kernelEvents) subscribe(id string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	e.mu.Lock()
	if e.waiters == nil {
		e.waiters = map[string]map[chan struct{}]struct{}{}
	}
	if e.waiters[id] == nil {
		e.waiters[id] = map[chan struct{}]struct{}{}
	}
	e.waiters[id][ch] = struct{}{}
	e.mu.Unlock()
	return ch, func() {
		e.mu.Lock()
		delete(e.waiters[id], ch)
		if len(e.waiters[id]) == 0 {
			delete(e.waiters, id)
		}
		e.mu.Unlock()
	}
}

func (e *kernelEvents) notify(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	jk, ok := obj.(*ejv1.JupyterKernel)
	if !ok {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for ch := range e.waiters[jk.Name] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// handler is the informer event handler that feeds e.
func (e *kernelEvents) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { e.notify(obj) },
		UpdateFunc: func(_, obj any) { e.notify(obj) },
		DeleteFunc: func(obj any) { e.notify(obj) },
	}
}
