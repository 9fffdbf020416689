package devnode

import (
	"context"
	"errors"
	"os"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// terminate carries out a graceful deletion: SIGTERM to every container's process group,
// SIGKILL once the grace period is over, then the final status and the deletion of the pod
// object with grace 0, as the kubelet does.
func (w *podWorker) terminate(ctx context.Context, pod *corev1.Pod) (time.Time, bool) {
	grace := time.Duration(30) * time.Second
	if pod.DeletionGracePeriodSeconds != nil {
		grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
	} else if pod.Spec.TerminationGracePeriodSeconds != nil {
		grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	if w.termStart.IsZero() {
		w.termStart = time.Now()
		for _, c := range append(append([]*container{}, w.inits...), w.ctrs...) {
			if c.running() {
				if c.stopProbes != nil {
					c.stopProbes()
					c.stopProbes = nil
				}
				w.log.Info("stopping container", "container", c.spec.Name, "gracePeriod", grace)
				if c.spec.Lifecycle != nil && c.spec.Lifecycle.PreStop != nil {
					hook, target, p := c.spec.Lifecycle.PreStop, c.target, c.proc
					go func() {
						hctx, cancel := context.WithTimeout(w.ctx, grace)
						defer cancel()
						if err := target.hook(hctx, hook, grace); err != nil {
							w.log.Info("preStop hook failed", "container", target.c.Name, "err", err)
						}
						p.signalGroup(syscall.SIGTERM)
					}()
					continue
				}
				c.proc.signalGroup(syscall.SIGTERM)
			}
		}
	}
	deadline := w.termStart.Add(grace)
	if w.anyRunning() && time.Now().Before(deadline) {
		return deadline, false
	}
	w.stopAll(0, "")
	w.release()
	if w.final == "" {
		w.final = corev1.PodFailed
		if allSucceeded(w.ctrs) {
			w.final = corev1.PodSucceeded
		}
	}
	w.writeStatus(ctx, pod)
	// The directory goes first, so nothing of the pod is left on the machine once the API
	// server says it is gone.
	w.removeDir()
	err := w.a.client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &w.uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		w.log.Error("deleting the pod", "err", err)
		return time.Now().Add(time.Second), false
	}
	w.log.Info("pod deleted")
	return time.Time{}, true
}

func allSucceeded(cs []*container) bool {
	for _, c := range cs {
		if !c.succeeded() {
			return false
		}
	}
	return true
}

func (w *podWorker) anyRunning() bool {
	for _, c := range append(append([]*container{}, w.inits...), w.ctrs...) {
		if c.running() {
			return true
		}
	}
	return false
}

// stopAll stops every running container with grace; called with w.mu held, it lets go of
// the lock while the processes stop.
func (w *podWorker) stopAll(grace time.Duration, reason string) {
	var procs []*proc
	for _, c := range append(append([]*container{}, w.inits...), w.ctrs...) {
		if c.running() {
			if c.stopProbes != nil {
				c.stopProbes()
				c.stopProbes = nil
			}
			if reason != "" {
				c.killReason = reason
			}
			procs = append(procs, c.proc)
		}
	}
	if len(procs) == 0 {
		return
	}
	w.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Go(func() { p.stop(grace) })
	}
	wg.Wait()
	w.mu.Lock()
	for _, c := range append(append([]*container{}, w.inits...), w.ctrs...) {
		if c.proc != nil {
			select {
			case <-c.proc.done:
				w.recordExit(c, c.proc)
			default:
			}
		}
	}
}

// shutdown stops the pod's containers because the agent stops; the pod keeps its directory
// and state for the next devnode.
func (w *podWorker) shutdown() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopAll(w.a.opts.ShutdownGracePeriod, "devnode stopped")
	w.saveState()
	w.a.gpus.releasePrefix(string(w.uid) + "/")
	w.releaseNetwork()
}

// releaseNetwork ends the pod's network namespace and gives its IP back.
func (w *podWorker) releaseNetwork() {
	if w.net != nil {
		w.net.close()
		w.net = nil
	}
	if w.ip.IsValid() {
		w.a.podIPs.release(w.ip)
	}
}

// release gives the pod's IP and GPUs back once nothing runs in it.
func (w *podWorker) release() {
	if w.anyRunning() {
		return
	}
	w.a.gpus.releasePrefix(string(w.uid) + "/")
	w.releaseNetwork()
	w.a.gpuReleased()
}

func (w *podWorker) removeDir() {
	if err := os.RemoveAll(w.dir); err != nil {
		w.log.Error("removing the pod directory", "dir", w.dir, "err", err)
	}
}

// saveState records the pod's IP, devices and processes.
func (w *podWorker) saveState() {
	if w.pod == nil {
		return
	}
	st := &podState{Namespace: w.pod.Namespace, Name: w.pod.Name, UID: w.uid, Devices: map[string][]string{}, Processes: map[string]int{}}
	if w.ip.IsValid() {
		st.PodIP = w.ip.String()
	}
	for _, c := range append(append([]*container{}, w.inits...), w.ctrs...) {
		if ids := w.a.gpus.held(c.owner(w.uid)); len(ids) > 0 {
			st.Devices[c.spec.Name] = ids
		}
		if c.proc != nil {
			st.Processes[c.spec.Name] = c.proc.pid
		}
	}
	if err := st.write(w.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		w.log.Error("saving the pod state", "err", err)
	}
}

func appendLog(path, line string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(line + "\n")
}

func joinComma(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += ","
		}
		out += s
	}
	return out
}
