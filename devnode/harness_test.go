package devnode

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

// The control plane (etcd, kube-apiserver, kube-scheduler, kube-controller-manager) is shared
// by the tests of this package; each test registers its own node and deletes it at the end,
// and uses its own namespace.
var (
	envOnce sync.Once
	env     *testenv.Env
	envErr  error
)

func TestMain(m *testing.M) {
	RunHelperIfRequested()
	code := m.Run()
	if env != nil {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}
	if imageRoot != "" {
		_ = os.RemoveAll(imageRoot)
	}
	os.Exit(code)
}

func controlPlane(t testing.TB) *testenv.Env {
	t.Helper()
	envOnce.Do(func() {
		env, envErr = testenv.Start(testenv.Options{Scheduler: true, ControllerManager: true})
	})
	require.NoError(t, envErr, "starting the control plane")
	return env
}

func clientset(t testing.TB) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(controlPlane(t).Config)
	require.NoError(t, err)
	return cs
}

// testNode is an in-process devnode.
type testNode struct {
	agent *Agent
	cs    kubernetes.Interface
	name  string
	root  string
	log   string
	// stop stops the agent (once) and checks no container process is left.
	stop func()
}

// startNode runs an agent until the test ends; then it checks that no container process is
// left and deletes the Node.
func startNode(t testing.TB, opts Options) *testNode {
	t.Helper()
	return startNodeWithConfig(t, controlPlane(t).Config, opts)
}

// startNodeWithConfig is startNode with devnode's client configuration.
func startNodeWithConfig(t testing.TB, cfg *rest.Config, opts Options) *testNode {
	t.Helper()
	cs := clientset(t)
	if opts.NodeName == "" {
		opts.NodeName = "devnode-" + strings.ToLower(rand.String(6))
	}
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	if opts.HeartbeatInterval == 0 {
		opts.HeartbeatInterval = time.Second
	}
	if opts.StatusInterval == 0 {
		opts.StatusInterval = 2 * time.Second
	}
	if opts.RestartBackoff == 0 {
		opts.RestartBackoff = 200 * time.Millisecond
	}
	if opts.MaxRestartBackoff == 0 {
		opts.MaxRestartBackoff = 2 * time.Second
	}
	if opts.ShutdownGracePeriod == 0 {
		opts.ShutdownGracePeriod = time.Second
	}
	logPath := filepath.Join(t.TempDir(), "devnode.log")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	opts.Log = slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := New(cfg, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	n := &testNode{agent: a, cs: cs, name: opts.NodeName, root: a.Root(), log: logPath}
	var stopOnce sync.Once
	n.stop = func() {
		stopOnce.Do(func() {
			cancel()
			select {
			case err := <-done:
				assert.NoError(t, err)
			case <-time.After(90 * time.Second):
				t.Error("devnode did not stop within 90s")
			}
			assert.Empty(t, ContainerProcesses(n.root), "container processes outlived devnode")
		})
	}
	t.Cleanup(func() {
		n.stop()
		_ = cs.CoreV1().Nodes().Delete(context.Background(), n.name, metav1.DeleteOptions{})
		if t.Failed() {
			data, _ := os.ReadFile(logPath)
			t.Logf("devnode log:\n%s", tail(string(data), 150))
		}
		_ = logf.Close()
	})
	select {
	case <-a.Ready():
	case err := <-done:
		t.Fatalf("devnode stopped before it was ready: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("devnode not ready after 60s")
	}
	n.waitSchedulable(t)
	return n
}

// waitSchedulable waits until the control plane removed the not-ready taint.
func (n *testNode) waitSchedulable(t testing.TB) { waitSchedulable(t, n.cs, n.name) }

func waitSchedulable(t testing.TB, cs kubernetes.Interface, name string) {
	t.Helper()
	var last *corev1.Node
	ok := assertEventually(60*time.Second, func() bool {
		node, err := cs.CoreV1().Nodes().Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		last = node
		if !nodeReady(node) {
			return false
		}
		for _, taint := range node.Spec.Taints {
			if taint.Key == corev1.TaintNodeNotReady {
				return false
			}
		}
		return true
	})
	if !ok {
		var taints, conds []string
		if last != nil {
			for _, tn := range last.Spec.Taints {
				taints = append(taints, tn.ToString())
			}
			for _, c := range last.Status.Conditions {
				conds = append(conds, fmt.Sprintf("%s=%s(%s, heartbeat %s)", c.Type, c.Status, c.Reason, c.LastHeartbeatTime))
			}
		}
		t.Fatalf("node %s never became schedulable (ready, without the not-ready taint): taints %v, conditions %v", name, taints, conds)
	}
}

func tail(s string, lines int) string {
	parts := strings.Split(s, "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

// newNamespace creates a namespace deleted when the test ends.
func newNamespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	name := "t-" + strings.ToLower(rand.String(8))
	_, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}

// waitPod waits until cond holds for the pod and returns it.
func waitPod(t *testing.T, cs kubernetes.Interface, ns, name string, timeout time.Duration, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var last *corev1.Pod
	ok := assertEventually(timeout, func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		last = p
		return cond(p)
	})
	if !ok {
		t.Fatalf("pod %s/%s: %s not reached within %s; last status: %s", ns, name, what, timeout, describeStatus(last))
	}
	return last
}

// waitPodGone waits until the pod no longer exists.
func waitPodGone(t *testing.T, cs kubernetes.Interface, ns, name string, timeout time.Duration) {
	t.Helper()
	ok := assertEventually(timeout, func() bool {
		_, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	})
	require.True(t, ok, "pod %s/%s still exists after %s", ns, name, timeout)
}

// assertEventually polls cond every 50ms until it holds or timeout passes.
func assertEventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
}

func describeStatus(p *corev1.Pod) string {
	if p == nil {
		return "<no pod>"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s reason=%q message=%q node=%q ip=%s", p.Status.Phase, p.Status.Reason, p.Status.Message, p.Spec.NodeName, p.Status.PodIP)
	for _, c := range p.Status.Conditions {
		fmt.Fprintf(&b, " [%s=%s %s %s]", c.Type, c.Status, c.Reason, c.Message)
	}
	for _, s := range append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		fmt.Fprintf(&b, " {%s restarts=%d ready=%v", s.Name, s.RestartCount, s.Ready)
		switch {
		case s.State.Waiting != nil:
			fmt.Fprintf(&b, " waiting %s: %s", s.State.Waiting.Reason, s.State.Waiting.Message)
		case s.State.Running != nil:
			b.WriteString(" running")
		case s.State.Terminated != nil:
			fmt.Fprintf(&b, " terminated %d %s: %s", s.State.Terminated.ExitCode, s.State.Terminated.Reason, s.State.Terminated.Message)
		}
		b.WriteString("}")
	}
	return b.String()
}

func podReady(p *corev1.Pod) bool { return conditionTrue(p.Status.Conditions, corev1.PodReady) }

func containerStatusOf(p *corev1.Pod, name string) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	return nil
}

// readLog returns the log of run restartCount of a container.
func (n *testNode) readLog(t *testing.T, p *corev1.Pod, container string, restartCount int32) string {
	t.Helper()
	data, err := os.ReadFile(LogPath(n.root, p.Namespace, p.Name, p.UID, container, restartCount))
	require.NoError(t, err)
	return string(data)
}

// waitLog waits until the container's log contains want.
func (n *testNode) waitLog(t *testing.T, p *corev1.Pod, container string, restartCount int32, want string) string {
	t.Helper()
	var data []byte
	ok := assertEventually(60*time.Second, func() bool {
		data, _ = os.ReadFile(LogPath(n.root, p.Namespace, p.Name, p.UID, container, restartCount))
		return strings.Contains(string(data), want)
	})
	require.True(t, ok, "log of %s/%s never showed %q; it holds:\n%s", p.Name, container, want, data)
	return string(data)
}

// processAlive reports whether pid is a live (not zombie) process.
func processAlive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// pod builders

const hostImage = "docker.io/library/debian:bookworm" // not mapped: runs on the host's files

func podIPEnv() corev1.EnvVar {
	return corev1.EnvVar{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}}
}

func shellPod(name string, policy corev1.RestartPolicy, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			RestartPolicy:                 policy,
			TerminationGracePeriodSeconds: ptrTo[int64](5),
			Containers: []corev1.Container{{
				Name: "main", Image: hostImage,
				Command: []string{"/bin/sh", "-c", script},
			}},
		},
	}
}

func ptrTo[T any](v T) *T { return &v }

func createPod(t *testing.T, cs kubernetes.Interface, ns string, p *corev1.Pod) *corev1.Pod {
	t.Helper()
	out, err := cs.CoreV1().Pods(ns).Create(context.Background(), p, metav1.CreateOptions{})
	require.NoError(t, err)
	return out
}

// image: the project's binaries laid out as its image, built once per test binary.

var (
	imageOnce sync.Once
	imageRoot string
	imageErr  error

	devnodeOnce sync.Once
	devnodeBin  string
	devnodeErr  error
)

// goBuild builds pkg of this repository, static, into out.
func goBuild(out, pkg string) error {
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// projectImage builds bin/elastic-jupyter and kernel-launcher into DIR/usr/local/bin and
// returns DIR.
func projectImage(t testing.TB) string {
	t.Helper()
	imageOnce.Do(func() {
		imageRoot, imageErr = os.MkdirTemp("", "devnode-image-")
		if imageErr != nil {
			return
		}
		bin := filepath.Join(imageRoot, "usr", "local", "bin")
		if imageErr = os.MkdirAll(bin, 0o755); imageErr != nil {
			return
		}
		for _, b := range []struct{ out, pkg string }{
			{filepath.Base(version.BinaryPath), "./cmd/elastic-jupyter"},
			{filepath.Base(version.LauncherPath), "./cmd/kernel-launcher"},
		} {
			if imageErr = goBuild(filepath.Join(bin, b.out), b.pkg); imageErr != nil {
				return
			}
		}
	})
	require.NoError(t, imageErr)
	return imageRoot
}

// devnodeBinary builds cmd/devnode (which is not in the image) and returns its path.
func devnodeBinary(t testing.TB) string {
	t.Helper()
	devnodeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "devnode-bin-")
		if err != nil {
			devnodeErr = err
			return
		}
		devnodeBin = filepath.Join(dir, "devnode")
		devnodeErr = goBuild(devnodeBin, "./cmd/devnode")
	})
	require.NoError(t, devnodeErr)
	return devnodeBin
}

// binaryNode is devnode run as the built cmd/devnode binary.
type binaryNode struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startBinary runs the built devnode with args; it is stopped when the test
// ends (and killed with the test process).
func startBinary(t *testing.T, logPath string, args ...string) *binaryNode {
	t.Helper()
	bin := devnodeBinary(t)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	b := &binaryNode{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(b.done) }()
	t.Cleanup(func() { b.stop(t, syscall.SIGTERM) })
	return b
}

// stop sends sig to devnode and waits for it to exit (SIGKILL after 60s).
func (b *binaryNode) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	_ = b.cmd.Process.Signal(sig)
	select {
	case <-b.done:
	case <-time.After(60 * time.Second):
		t.Error("devnode did not exit within 60s")
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

func readFile(path string) (string, error) {
	data, err := os.ReadFile(path)
	return string(data), err
}
