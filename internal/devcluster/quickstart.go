package devcluster

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Env is what `make up` writes to Dir/env for shells and tests.
type Env struct {
	// Kubeconfig is the admin kubeconfig.
	Kubeconfig string
	// GatewayURL is the quick start gateway's local address.
	GatewayURL string
	// NotebookURL is the quick start notebook server's local address, with its token.
	NotebookURL string
	// NotebookBase is NotebookURL without the token.
	NotebookBase string
	// NotebookToken is the notebook server's token.
	NotebookToken string
}

// StateClaim is the quick start's claim where kernels keep their variables while suspended
// (examples/quickstart/15-state.yaml); make up binds it to a directory of VolumesDir.
const StateClaim = "kernel-state"

// upQuickstart applies examples/quickstart, with a PersistentVolume for its state claim, and
// waits until the gateway and the notebook server are ready.
func (cl *Cluster) upQuickstart(ctx context.Context) error {
	if err := cl.CreateHostPathVolume(ctx, TeamNamespace+"-"+StateClaim, TeamNamespace, StateClaim, resource.MustParse("10Gi")); err != nil {
		return err
	}
	if err := cl.kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", filepath.Join(cl.cfg.Root, "examples", "quickstart")); err != nil {
		return err
	}
	for _, what := range []string{"jupytergateway/" + GatewayName, "jupyternotebook/" + NotebookName} {
		if err := cl.waitFor(ctx, "controller", what+" to be Ready", func() bool {
			return cl.kubectlQuiet(ctx, "-n", TeamNamespace, "wait", "--for=condition=Ready", what, "--timeout=2s") == nil
		}); err != nil {
			return err
		}
	}
	env, err := cl.Env(ctx)
	if err != nil {
		return err
	}
	// A shell sources it: `source .dev/env; kubectl get pods -A` uses this cluster and the
	// kubectl the tools build made.
	content := fmt.Sprintf("export KUBECONFIG=%s\nexport PATH=%s:\"$PATH\"\nexport JUPYTER_GATEWAY_URL=%s\nexport NOTEBOOK_URL=%s\n",
		env.Kubeconfig, cl.cfg.ToolsBin, env.GatewayURL, env.NotebookURL)
	return os.WriteFile(filepath.Join(cl.cfg.Dir, "env"), []byte(content), 0o600)
}

// Env reads the addresses and the notebook token of the running quick start.
func (cl *Cluster) Env(ctx context.Context) (*Env, error) {
	gw, err := cl.ServiceAddress(TeamNamespace, GatewayName, 8888)
	if err != nil {
		return nil, err
	}
	nb, err := cl.ServiceAddress(TeamNamespace, NotebookName, 8888)
	if err != nil {
		return nil, err
	}
	enc, err := cl.KubectlOutput(ctx, "-n", TeamNamespace, "get", "secret", NotebookName+"-auth", "-o", "jsonpath={.data.token}")
	if err != nil {
		return nil, fmt.Errorf("reading the notebook's token: %w", err)
	}
	tok, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	if err != nil {
		return nil, fmt.Errorf("decoding the notebook's token: %w", err)
	}
	base := "http://" + nb
	return &Env{
		Kubeconfig: cl.Kubeconfig, GatewayURL: "http://" + gw,
		NotebookBase: base, NotebookToken: string(tok), NotebookURL: base + "/?token=" + string(tok),
	}, nil
}

// PrintWelcome says what runs and what to try.
func (cl *Cluster) PrintWelcome(w io.Writer) {
	env, err := cl.Env(context.Background())
	if err != nil {
		fmt.Fprintf(w, "up: running, but the quick start's addresses are unknown: %v\n", err)
		return
	}
	dir := cl.cfg.Dir
	fmt.Fprintf(w, `
elastic-jupyter is running: a local control plane, a CPU node and a GPU node with %d fake GPU(s),
the controller, the webhook, and team-a's gateway and notebook server.

  Open the notebook:   %s
                       (NOTEBOOK_URL in %s)
  Use kubectl:         source %s   (KUBECONFIG=%s, and kubectl on PATH)

Then try it:
  1. In the notebook, New -> "Python 3 (1 GPU)" and run a cell:
       import os; print(os.environ["NVIDIA_VISIBLE_DEVICES"])
  2. Watch the kernel pod appear on the GPU node:
       kubectl get jupyterkernels,pods -n %s -o wide -w
  3. Leave it idle for two minutes: the kernel is suspended, its pod goes and the GPU returns:
       kubectl describe node %s | grep nvidia.com/gpu   (the last line: GPUs allocated)
       kubectl get jupytergateway -n %s
  4. Run another cell: the kernel comes back on demand.

Logs of every component are in %s. 'make down' stops everything.
`, cl.cfg.GPUs, env.NotebookURL, filepath.Join(dir, "env"), filepath.Join(dir, "env"), env.Kubeconfig,
		TeamNamespace, cl.cfg.NodeName+"-gpu", TeamNamespace, filepath.Join(dir, "logs"))
}
