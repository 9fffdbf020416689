package devcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/elastic-jupyter/elastic-jupyter/devnode"
	"github.com/elastic-jupyter/elastic-jupyter/internal/rootfs"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

// The system's namespaces and names, as examples/quickstart sets them up.
const (
	// SystemNamespace holds the webhook's team policy.
	SystemNamespace = "elastic-jupyter-system"
	// TeamNamespace is the quick start team's namespace.
	TeamNamespace = "team-a"
	// GatewayName is the quick start gateway.
	GatewayName = "gateway"
	// NotebookName is the quick start notebook.
	NotebookName = "notebook"
)

// NotebookImageRepository is the stock Jupyter image's repository: the controller's default
// notebook image (controller.DefaultNotebookImage) and the quick start kernelspecs' image.
// The devnodes run it, whatever its tag, from Config.RootfsDir (JupyterLab 4 on Jupyter
// Server 2.x, Debian trixie), as a container runtime would run the image.
const NotebookImageRepository = "quay.io/jupyter/base-notebook"

// checkRootfs fails, naming hack/rootfs.sh, when the JupyterLab rootfs is not built in dir.
func checkRootfs(dir string) error {
	if err := rootfs.Check(dir); err != nil {
		return fmt.Errorf("the devnodes run %s from its root filesystem (Config.RootfsDir, -rootfs): %w", NotebookImageRepository, err)
	}
	return nil
}

// projectImage lays the fresh builds out as this project's image (usr/local/bin/...), for
// devnode's --image-map; the fake kernel comes along, for the benchmarks' kernelspecs.
func (cl *Cluster) projectImage() (string, error) {
	dir := filepath.Join(cl.cfg.Dir, "rootfs")
	bin := filepath.Join(dir, "usr", "local", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return "", err
	}
	for name := range ProjectBinaries {
		if err := copyFile(filepath.Join(cl.cfg.ProjectBin, name), filepath.Join(bin, name)); err != nil {
			return "", fmt.Errorf("%s is not built: run 'make build' (%w)", name, err)
		}
	}
	return dir, nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, dst)
}

func (cl *Cluster) project() string { return filepath.Join(cl.cfg.ProjectBin, "elastic-jupyter") }

// devnodeRoot is the CPU devnode's state directory, where its Service table is (both
// devnodes proxy every Service).
func (cl *Cluster) devnodeRoot() string { return filepath.Join(cl.cfg.Dir, "devnode-cpu") }

// upNode starts two devnodes, as a cluster has a CPU pool and a GPU pool: "<node>-cpu"
// without GPUs, where the gateway, the notebook server and CPU kernels run, and
// "<node>-gpu" with the fake GPUs and the GPU taint, where only GPU kernels land. Both map the
// project's image to the fresh builds (laid over the host's root) and run the stock Jupyter
// image from the JupyterLab rootfs.
func (cl *Cluster) upNode(ctx context.Context) error {
	root, err := cl.projectImage()
	if err != nil {
		return err
	}
	if err := checkRootfs(cl.cfg.RootfsDir); err != nil {
		return err
	}
	nodes := []struct {
		component, node string
		gpus            int
	}{
		{"devnode-cpu", cl.cfg.NodeName + "-cpu", 0},
		{"devnode-gpu", cl.cfg.NodeName + "-gpu", cl.cfg.GPUs},
	}
	for _, n := range nodes {
		if cl.running(n.component) {
			continue
		}
		args := []string{
			"--node-name=" + n.node, "--kubeconfig=" + cl.Kubeconfig,
			"--root=" + filepath.Join(cl.cfg.Dir, n.component), "--gpus=" + strconv.Itoa(n.gpus),
			"--image-map=" + version.ImageRepository + "=" + root,
			"--image-root=" + NotebookImageRepository + "=" + cl.cfg.RootfsDir,
			"--lock-dir=" + filepath.Join(os.TempDir(), "elastic-jupyter-devnode-addresses"),
		}
		if cl.cfg.CPUs > 0 {
			args = append(args, "--cpu="+strconv.Itoa(cl.cfg.CPUs))
		}
		if cl.cfg.Pods > 0 {
			args = append(args, "--pods="+strconv.Itoa(cl.cfg.Pods))
		}
		if err := cl.start(component{name: n.component, path: filepath.Join(cl.cfg.ProjectBin, DevnodeBinary), args: args}); err != nil {
			return err
		}
	}
	for _, n := range nodes {
		if err := cl.waitFor(ctx, n.component, "node "+n.node+" to be Ready", func() bool {
			return cl.kubectlQuiet(ctx, "wait", "--for=condition=Ready", "node/"+n.node, "--timeout=2s") == nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// upController starts the controller.
func (cl *Cluster) upController(ctx context.Context) error {
	if cl.running("controller") {
		return nil
	}
	if err := cl.checkPorts("controller", cl.cfg.ControllerMetricsPort, cl.cfg.ControllerHealthPort); err != nil {
		return err
	}
	if err := cl.start(component{name: "controller", path: cl.project(), args: []string{
		"controller", "--kubeconfig=" + cl.Kubeconfig, "--leader-elect=false",
		"--metrics-bind-address=127.0.0.1:" + strconv.Itoa(cl.cfg.ControllerMetricsPort),
		"--health-probe-bind-address=127.0.0.1:" + strconv.Itoa(cl.cfg.ControllerHealthPort),
	}}); err != nil {
		return err
	}
	return cl.waitHTTP(ctx, "controller", "http://127.0.0.1:"+strconv.Itoa(cl.cfg.ControllerHealthPort)+"/readyz", nil)
}

// ServiceAddress returns the local address (host:port) at which devnode serves a Service.
func (cl *Cluster) ServiceAddress(namespace, name string, port int32) (string, error) {
	return devnode.LookupService(cl.devnodeRoot(), namespace, name, port)
}

// waitFor polls ok every half second for up to 5 minutes, failing early when the named
// component exits.
func (cl *Cluster) waitFor(ctx context.Context, name, what string, ok func() bool) error {
	errExited := fmt.Errorf("%s exited while waiting for %s; see %s", name, what, filepath.Join(cl.cfg.Dir, "logs", name+".log"))
	err := wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, 5*time.Minute, true, func(context.Context) (bool, error) {
		if ok() {
			return true, nil
		}
		if name != "" && !cl.running(name) {
			return false, errExited
		}
		return false, nil
	})
	if err != nil && !errors.Is(err, errExited) {
		return fmt.Errorf("timed out waiting for %s; see the logs in %s", what, filepath.Join(cl.cfg.Dir, "logs"))
	}
	return err
}

func (cl *Cluster) kubectlStdin(ctx context.Context, stdin string, args ...string) error {
	cmd := exec.CommandContext(ctx, cl.tool("kubectl"), append([]string{"--kubeconfig=" + cl.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// KubectlApply applies a manifest (server-side), as `kubectl apply -f -` does.
func (cl *Cluster) KubectlApply(ctx context.Context, manifest string) error {
	return cl.kubectlStdin(ctx, manifest, "apply", "--server-side", "--force-conflicts", "-f", "-")
}

func (cl *Cluster) kubectlQuiet(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, cl.tool("kubectl"), append([]string{"--kubeconfig=" + cl.Kubeconfig}, args...)...)
	return cmd.Run()
}

// KubectlOutput runs kubectl and returns its standard output.
func (cl *Cluster) KubectlOutput(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, cl.tool("kubectl"), append([]string{"--kubeconfig=" + cl.Kubeconfig}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}
