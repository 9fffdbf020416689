package testenv

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/elastic-jupyter/elastic-jupyter/internal/process"
)

// children returns the pids of parent's children that run a cached tool binary.
func children(parent int) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// The fields after the command (which is in parentheses) start with state, ppid.
		rest := string(stat[strings.LastIndexByte(string(stat), ')')+2:])
		fields := strings.Fields(rest)
		if len(fields) < 2 || fields[1] != strconv.Itoa(parent) {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.HasPrefix(exe, BinDir()) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func TestStartRunsAControlPlaneAndStopLeavesNoProcess(t *testing.T) {
	env, err := Start(Options{Scheduler: true, ControllerManager: true})
	require.NoError(t, err)
	stopped := false
	defer func() {
		if !stopped {
			_ = env.Stop()
		}
	}()

	pids := children(os.Getpid())
	names := map[string]bool{}
	for _, pid := range pids {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		names[filepath.Base(exe)] = true
	}
	for _, want := range []string{"etcd", "kube-apiserver", "kube-scheduler", "kube-controller-manager"} {
		assert.True(t, names[want], "%s runs as a child of the test (children: %v)", want, names)
	}

	// kube-controller-manager works: a Deployment gets a ReplicaSet and a Pod.
	ctx := context.Background()
	labels := map[string]string{"app": "probe"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "probe", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
	require.NoError(t, env.Client.Create(ctx, dep))
	require.Eventually(t, func() bool {
		pods := &corev1.PodList{}
		return env.Client.List(ctx, pods, client.InNamespace("default"), client.MatchingLabels(labels)) == nil && len(pods.Items) == 1
	}, 60*time.Second, 200*time.Millisecond, "the deployment controller creates the pod")

	// The admin kubeconfig works for binaries.
	kubectl, err := Binary("kubectl")
	require.NoError(t, err)
	out, err := exec.Command(kubectl, "--kubeconfig", env.Kubeconfig, "get", "crd", "-o", "name").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "jupyterkernels.kubeflow.tkestack.io")

	dir := env.Dir
	require.NoError(t, env.Stop())
	stopped = true
	for _, pid := range pids {
		assert.False(t, process.Alive(pid), "pid %d still runs after Stop", pid)
	}
	_, err = os.Stat(dir)
	assert.True(t, os.IsNotExist(err), "Stop removes %s", dir)
}

// TestControlPlaneDiesWithTheTestProcess starts a control plane in a child test process, kills
// that process with SIGKILL (no Stop runs), and checks that every component dies with it.
func TestControlPlaneDiesWithTheTestProcess(t *testing.T) {
	if os.Getenv("TESTENV_CHILD") == "1" {
		runChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestControlPlaneDiesWithTheTestProcess$", "-test.v")
	cmd.Env = append(os.Environ(), "TESTENV_CHILD=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var pids []int
	var dir string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "DIR "); ok {
			dir = d
		}
		if p, ok := strings.CutPrefix(line, "PIDS "); ok {
			for _, f := range strings.Fields(p) {
				pid, err := strconv.Atoi(f)
				require.NoError(t, err)
				pids = append(pids, pid)
			}
			break
		}
	}
	require.Len(t, pids, 4, "the child reports etcd, kube-apiserver, kube-scheduler and kube-controller-manager")
	for _, pid := range pids {
		require.True(t, process.Alive(pid))
	}
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	<-waited
	require.Eventually(t, func() bool {
		for _, pid := range pids {
			if process.Alive(pid) {
				return false
			}
		}
		return true
	}, 30*time.Second, 100*time.Millisecond, "every component dies with the process that started it")
	if dir != "" {
		_ = os.RemoveAll(dir) // no Stop ran in the child
	}
}

func runChild() {
	env, err := Start(Options{Scheduler: true, ControllerManager: true})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("DIR", env.Dir)
	var pids []string
	for _, pid := range children(os.Getpid()) {
		pids = append(pids, strconv.Itoa(pid))
	}
	fmt.Println("PIDS", strings.Join(pids, " "))
	select {} // wait to be killed
}
