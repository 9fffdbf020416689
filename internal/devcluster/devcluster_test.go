package devcluster

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/elastic-jupyter/elastic-jupyter/controller"
	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/rootfs"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// freeConfig is a Config on free ports in a temporary directory, tied to the test process.
func freeConfig(t *testing.T) Config {
	t.Helper()
	ports, err := kerneltest.FreePorts("127.0.0.1", 6)
	require.NoError(t, err)
	etcd := ports[1]
	return Config{
		Dir: t.TempDir(), ToolsBin: testenv.BinDir(), Root: testenv.RepoRoot(),
		APIPort: ports[0], EtcdPort: etcd, WebhookPort: ports[2],
		ControllerMetricsPort: ports[3], ControllerHealthPort: ports[4], Attached: true,
	}
}

func TestControlPlaneUpAndDown(t *testing.T) {
	cfg := freeConfig(t)
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl, err := upControlPlaneOnly(ctx, cfg, &out)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(cfg.Dir, "logs", "kube-apiserver.log"))
		t.Fatalf("%v\n%s\n%s", err, out.String(), log)
	}
	defer cl.Stop()

	kubectl := exec.Command(filepath.Join(cfg.ToolsBin, "kubectl"), "--kubeconfig", cl.Kubeconfig, "get", "crd", "jupyterkernels.kubeflow.tkestack.io")
	o, err := kubectl.CombinedOutput()
	require.NoError(t, err, string(o))

	// The PV binder runs: a claim binds to the hostPath PV made for it, under Dir/volumes.
	require.NoError(t, cl.kubectlStdin(ctx, `{"apiVersion": "v1", "kind": "PersistentVolumeClaim",
  "metadata": {"name": "state", "namespace": "default"},
  "spec": {"accessModes": ["ReadWriteMany"], "storageClassName": "", "resources": {"requests": {"storage": "1Gi"}}}}`, "apply", "-f", "-"))
	require.NoError(t, cl.CreateHostPathVolume(ctx, "default-state", "default", "state", resource.MustParse("1Gi")))
	assert.DirExists(t, filepath.Join(cfg.Dir, "volumes", "default-state"))
	require.NoError(t, cl.kubectl(ctx, "-n", "default", "wait", "--for=jsonpath={.status.phase}=Bound", "pvc/state", "--timeout=60s"))
	vol, err := cl.KubectlOutput(ctx, "-n", "default", "get", "pvc", "state", "-o", "jsonpath={.spec.volumeName}")
	require.NoError(t, err)
	assert.Equal(t, "default-state", vol)

	pids := map[string]int{}
	for _, p := range cl.procs {
		pids[p.name] = p.pid
	}
	require.NoError(t, cl.Stop())
	for name, pid := range pids {
		assert.False(t, alive(pid), "%s still runs after Down", name)
	}
	files, _ := filepath.Glob(filepath.Join(cfg.Dir, "pids", "*.pid"))
	assert.Empty(t, files)
	_, err = os.Stat(filepath.Join(cfg.Dir, "logs", "kube-apiserver.log"))
	assert.NoError(t, err, "logs stay for inspection")
}

// The image the devnodes run from the JupyterLab rootfs is the controller's default notebook
// image and the quick start kernelspecs' image, whatever their tags.
func TestNotebookImageRunsFromRootfs(t *testing.T) {
	matches := func(image string) bool {
		rest, ok := strings.CutPrefix(image, NotebookImageRepository)
		return ok && (rest == "" || strings.HasPrefix(rest, ":") || strings.HasPrefix(rest, "@"))
	}
	assert.True(t, matches(controller.DefaultNotebookImage), controller.DefaultNotebookImage)
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "examples", "quickstart", "20-kernelspecs.yaml"))
	require.NoError(t, err)
	var images []string
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "image:"); ok {
			images = append(images, strings.Trim(strings.TrimSpace(v), `"'`))
		}
	}
	require.NotEmpty(t, images)
	for _, image := range images {
		assert.True(t, matches(image), "kernelspec image %s does not run from the rootfs", image)
	}
}

// Up without the JupyterLab rootfs fails at once, before starting anything, and says to run
// hack/rootfs.sh; an empty RootfsDir means where the script builds it.
func TestUpNeedsTheRootfs(t *testing.T) {
	cfg := freeConfig(t)
	cfg.RootfsDir = filepath.Join(t.TempDir(), "missing")
	var out bytes.Buffer
	_, err := Up(context.Background(), cfg, &out)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "hack/rootfs.sh")
	assert.Contains(t, err.Error(), cfg.RootfsDir)
	assert.NoDirExists(t, filepath.Join(cfg.Dir, "pids"), "Up started something")

	empty := Config{}
	empty.defaults()
	assert.Equal(t, rootfs.Dir(), empty.RootfsDir)
}

// Negative node capacities are refused at once, naming the make setting, before anything
// starts.
func TestUpRefusesNegativeCapacity(t *testing.T) {
	for _, c := range []struct {
		set  func(*Config)
		want string
	}{
		{func(c *Config) { c.CPUs = -1 }, "CPUS=-1"},
		{func(c *Config) { c.Pods = -3 }, "PODS=-3"},
	} {
		cfg := freeConfig(t)
		c.set(&cfg)
		_, err := Up(context.Background(), cfg, &bytes.Buffer{})
		require.Error(t, err)
		assert.Contains(t, err.Error(), c.want)
		assert.NoDirExists(t, filepath.Join(cfg.Dir, "pids"), "Up started something")
	}
}

// FreePorts gives ports that are free with the ones they imply (etcd's peer port, the
// webhook's next to the controller's), all distinct.
func TestFreePorts(t *testing.T) {
	var cfg Config
	require.NoError(t, FreePorts(&cfg))
	ports := []int{cfg.APIPort, cfg.EtcdPort, cfg.EtcdPort + 1, cfg.WebhookPort,
		cfg.ControllerMetricsPort, cfg.ControllerHealthPort, cfg.ControllerMetricsPort + 2, cfg.ControllerHealthPort + 2}
	seen := map[int]bool{}
	for _, p := range ports {
		assert.False(t, seen[p], "port %d twice in %v", p, ports)
		seen[p] = true
		assert.NoError(t, portFree("127.0.0.1:"+strconv.Itoa(p)))
	}
}
