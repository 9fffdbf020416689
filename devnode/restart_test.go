package devnode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

// cmdline returns a process's arguments joined by spaces.
func cmdline(pid int) string {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " "))
}

// livePids returns the live processes of the containers under root whose command line is
// cmd, by container run directory.
func livePids(root, cmd string) map[string][]int {
	out := map[string][]int{}
	for dir, pids := range ContainerProcesses(root) {
		for _, pid := range pids {
			if processAlive(pid) && cmdline(pid) == cmd {
				out[dir] = append(out[dir], pid)
			}
		}
	}
	return out
}

// devnode (the built binary) is killed with SIGKILL: its containers die with it, a child
// that left for a session of its own too. The restarted devnode starts the Always pod's
// container again (restartCount 1) exactly once, fails the Never pod, and on a graceful stop
// leaves nothing running and the node NotReady.
func TestDevnodeRestart(t *testing.T) {
	env := controlPlane(t)
	cs := clientset(t)
	name := "devnode-restart-" + strings.ToLower(rand.String(5))
	root := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "devnode.log")
	args := []string{
		"--kubeconfig", env.Kubeconfig, "--node-name", name, "--root", root,
		"--heartbeat-interval", "1s", "--status-interval", "2s", "--restart-backoff", "200ms",
		"--image-map", version.ImageRepository + "=" + projectImage(t),
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{})
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("devnode log:\n%s", tail(string(data), 150))
		}
	})
	first := startBinary(t, logPath, args...)
	waitSchedulable(t, cs, name)
	ns := newNamespace(t, cs)
	createPod(t, cs, ns, shellPod("always", corev1.RestartPolicyAlways, `setsid sleep 1000 & exec sleep 1001`))
	createPod(t, cs, ns, shellPod("never", corev1.RestartPolicyNever, `exec sleep 1002`))
	for _, p := range []string{"always", "never"} {
		waitPod(t, cs, ns, p, 60*time.Second, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	}
	before, err := cs.CoreV1().Pods(ns).Get(context.Background(), "always", metav1.GetOptions{})
	require.NoError(t, err)
	var orphans, mains []int
	require.True(t, assertEventually(10*time.Second, func() bool {
		orphans, mains = nil, nil
		for _, pids := range livePids(root, "sleep 1000") {
			orphans = append(orphans, pids...)
		}
		for _, cmd := range []string{"sleep 1001", "sleep 1002"} {
			for _, pids := range livePids(root, cmd) {
				mains = append(mains, pids...)
			}
		}
		return len(orphans) == 1 && len(mains) == 2
	}), "expected one escaped child and two main processes, got %v and %v", orphans, mains)

	first.stop(t, syscall.SIGKILL)
	require.True(t, assertEventually(10*time.Second, func() bool {
		return !processAlive(mains[0]) && !processAlive(mains[1]) && !processAlive(orphans[0])
	}), "processes outlived a SIGKILLed devnode (the child in its own session too: its pid namespace died with its init)")

	second := startBinary(t, logPath, args...)
	got := waitPod(t, cs, ns, "always", 60*time.Second, "running again", func(p *corev1.Pod) bool {
		s := containerStatusOf(p, "main")
		return s != nil && s.RestartCount == 1 && s.State.Running != nil
	})
	last := containerStatusOf(got, "main").LastTerminationState.Terminated
	require.NotNil(t, last)
	assert.Equal(t, "ContainerStatusUnknown", last.Reason)
	assert.Equal(t, before.Status.PodIP, got.Status.PodIP, "the pod got another IP across the restart")
	assert.Equal(t, before.Status.StartTime, got.Status.StartTime)
	got = waitPod(t, cs, ns, "never", 60*time.Second, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	require.NotNil(t, containerStatusOf(got, "main").State.Terminated)
	assert.Equal(t, "ContainerStatusUnknown", containerStatusOf(got, "main").State.Terminated.Reason)

	var runs map[string][]int
	require.True(t, assertEventually(10*time.Second, func() bool {
		runs = livePids(root, "sleep 1001")
		return len(livePids(root, "sleep 1000")) == 1
	}))
	require.Len(t, runs, 1, "the Always container runs more than once: %v", runs)
	for dir, pids := range runs {
		assert.Len(t, pids, 1)
		assert.Equal(t, "1", filepath.Base(dir), "the container's second run (restartCount 1) should be the one running")
	}
	assert.Empty(t, livePids(root, "sleep 1002"), "the Never container was started again")

	second.stop(t, syscall.SIGTERM)
	assert.Empty(t, ContainerProcesses(root), "processes outlived a gracefully stopped devnode")
	node, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	assert.False(t, nodeReady(node))
}

// A process still running in a container of a previous devnode with the same root (here
// started by the test itself, as if its devnode had lost track of it) is killed when the next
// devnode starts, and the directory of its pod, which the API no longer has, is removed.
func TestLeftoversOfPreviousDevnodeAreKilled(t *testing.T) {
	root := t.TempDir()
	podDir := PodDir(root, "gone", "pod", "0d9c8e6a-0000-4000-8000-000000000001")
	run := containerRunDir(podDir, "main", 0)
	for _, d := range []string{rootfsDirName, upperDirName, workDirName} {
		require.NoError(t, os.MkdirAll(filepath.Join(run, d), 0o755))
	}
	hosts := filepath.Join(podDir, hostsFileName)
	require.NoError(t, os.WriteFile(hosts, []byte("127.0.0.1 localhost\n"), 0o644))
	sp, err := newSpawner()
	require.NoError(t, err)
	defer sp.stop()
	exe, err := os.Executable()
	require.NoError(t, err)
	p, failure, err := startProc(sp, exe, &helperSpec{
		Rootfs: filepath.Join(run, rootfsDirName), Upper: filepath.Join(run, upperDirName), Work: filepath.Join(run, workDirName),
		Hosts: hosts, Hostname: "pod", Argv: []string{"sleep", "1000"}, Env: []string{"PATH=" + StandardPath},
	}, filepath.Join(podDir, "log"))
	require.NoError(t, err)
	require.Nil(t, failure)
	defer p.stop(0)
	assert.Equal(t, map[string][]int{run: {p.pid}}, ContainerProcesses(root))

	startNode(t, Options{Root: root})
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the new devnode left the previous one's container running")
	}
	assert.Equal(t, int32(128+int32(syscall.SIGKILL)), p.exitCode)
	_, err = os.Stat(podDir)
	assert.True(t, os.IsNotExist(err), "the directory of a pod the API does not have was kept")
}
