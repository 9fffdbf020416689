package devnode

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/watch"
)

// BenchmarkContainerStart measures one container run without the control plane: the helper
// starts in new namespaces, mounts the overlay root, binds the host's mounts, pivots, drops to
// uid 1000 and execs /bin/true; the run is reaped.
func BenchmarkContainerStart(b *testing.B) {
	sp, err := newSpawner()
	require.NoError(b, err)
	defer sp.stop()
	exe, err := os.Executable()
	require.NoError(b, err)
	dir := b.TempDir()
	hosts := filepath.Join(dir, "hosts")
	require.NoError(b, os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644))
	b.ResetTimer()
	for i := range b.N {
		run := filepath.Join(dir, strconv.Itoa(i))
		for _, d := range []string{rootfsDirName, upperDirName, workDirName} {
			require.NoError(b, os.MkdirAll(filepath.Join(run, d), 0o755))
		}
		spec := &helperSpec{
			Rootfs: filepath.Join(run, rootfsDirName), Upper: filepath.Join(run, upperDirName), Work: filepath.Join(run, workDirName),
			Hosts: hosts, Hostname: "bench", Argv: []string{"/bin/true"}, Env: []string{"PATH=" + StandardPath}, UID: 1000, GID: 1000,
		}
		p, failure, err := startProc(sp, exe, spec, filepath.Join(run, "log"))
		require.NoError(b, err)
		require.Nil(b, failure)
		<-p.done
		require.Equal(b, int32(0), p.exitCode)
	}
}

// BenchmarkPodStart measures a pod from its creation to the Running phase devnode writes:
// the scheduler binds it, devnode prepares its sandbox and starts its container.
func BenchmarkPodStart(b *testing.B) {
	n := startNode(b, Options{})
	ns := "bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	_, err := n.cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
	require.NoError(b, err)
	b.Cleanup(func() { _ = n.cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{}) })
	pods := n.cs.CoreV1().Pods(ns)
	b.ResetTimer()
	for i := range b.N {
		name := "p-" + strconv.Itoa(i)
		p := shellPod(name, corev1.RestartPolicyNever, "exec sleep 1000")
		p.Spec.TerminationGracePeriodSeconds = ptrTo[int64](0)
		w, err := pods.Watch(context.Background(), metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("metadata.name", name).String()})
		require.NoError(b, err)
		_, err = pods.Create(context.Background(), p, metav1.CreateOptions{})
		require.NoError(b, err)
		waitWatch(b, w, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		b.StopTimer()
		require.NoError(b, pods.Delete(context.Background(), name, metav1.DeleteOptions{}))
		waitWatch(b, w, nil)
		b.StartTimer()
	}
}

// waitWatch waits for an event whose pod satisfies cond (nil: for the deletion).
func waitWatch(b *testing.B, w watch.Interface, cond func(*corev1.Pod) bool) {
	b.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case ev, ok := <-w.ResultChan():
			require.True(b, ok, "the watch ended")
			if cond == nil {
				if ev.Type == watch.Deleted {
					w.Stop()
					return
				}
				continue
			}
			if p, ok := ev.Object.(*corev1.Pod); ok && cond(p) {
				return
			}
		case <-timeout:
			b.Fatal("no such pod event within 60s")
		}
	}
}
