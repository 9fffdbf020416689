package e2e

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/devcluster"
	"github.com/elastic-jupyter/elastic-jupyter/internal/jupytertest"
)

// secretToken is the key "token" of a Secret of the team's namespace.
func secretToken(t *testing.T, name string) string {
	t.Helper()
	enc := kubectl(t, "-n", devcluster.TeamNamespace, "get", "secret", name, "-o", "jsonpath={.data.token}")
	tok, err := base64.StdEncoding.DecodeString(strings.TrimSpace(enc))
	require.NoError(t, err)
	require.NotEmpty(t, tok, "secret %s has a token", name)
	return string(tok)
}

// secondNotebook creates bob's notebook server beside the quick start's (alice's) and returns
// its address and token once it is ready.
func secondNotebook(t *testing.T) (base, token string) {
	t.Helper()
	kubectlApply(t, fmt.Sprintf(`apiVersion: kubeflow.tkestack.io/v1alpha1
kind: JupyterNotebook
metadata: {name: notebook-bob, namespace: %s}
spec:
  user: bob
  gateway: {name: %s}
  template:
    spec:
      containers:
        - name: notebook
          command: ["jupyter", "lab", "--ip=0.0.0.0", "--port=8888", "--no-browser"]
`, devcluster.TeamNamespace, devcluster.GatewayName))
	t.Cleanup(func() {
		kubectl(t, "-n", devcluster.TeamNamespace, "delete", "jupyternotebook", "notebook-bob", "--wait=false")
	})
	kubectl(t, "-n", devcluster.TeamNamespace, "wait", "--for=condition=Ready", "jupyternotebook/notebook-bob", "--timeout=180s")
	addr, err := cluster.ServiceAddress(devcluster.TeamNamespace, "notebook-bob", 8888)
	require.NoError(t, err)
	return "http://" + addr, secretToken(t, "notebook-bob-auth")
}

// TestEachNotebooksKernelsAreItsOwn: two notebook servers of one team. Alice's kernel is
// invisible to bob's token (list, GET, websocket, interrupt, restart, delete all 404), and
// through bob's notebook server; the team's admin token sees it. A per-user limit refuses a
// start with the limit's name and creates nothing. No token appears in a pod, a CR, an event
// or a log.
func TestEachNotebooksKernelsAreItsOwn(t *testing.T) {
	t.Cleanup(func() { shutDownKernels(t) })
	admin := newGatewayClient(t)
	bobBase, bobToken := secondNotebook(t)

	id, code := startKernel(t, "python3") // through alice's notebook server, as JupyterLab would
	require.Equal(t, 201, code)
	_, ok := kernelCR(t, id)
	require.True(t, ok)
	cr := kubectl(t, "-n", devcluster.TeamNamespace, "get", "jupyterkernel", id, "-o", "jsonpath={.spec.user} {.metadata.annotations.kubeflow\\.tkestack\\.io/owner}")
	assert.Equal(t, "alice "+devcluster.TeamNamespace+"/"+devcluster.NotebookName, cr, "the kernel is alice's notebook server's")

	// What bob's notebook holds: its own token, as a process in its pod reads it from the file.
	bob := &gatewayClient{t: t, token: secretToken(t, "notebook-bob-gateway-token")}
	var list []map[string]any
	require.Equal(t, http.StatusOK, bob.api("GET", "/api/kernels", nil, &list))
	for _, m := range list {
		assert.NotEqual(t, id, m["id"], "bob's token does not list alice's kernel")
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/kernels/" + id}, {"POST", "/api/kernels/" + id + "/interrupt"},
		{"POST", "/api/kernels/" + id + "/restart"}, {"DELETE", "/api/kernels/" + id},
	} {
		assert.Equal(t, http.StatusNotFound, bob.api(c.method, c.path, map[string]any{}, nil), "%s %s with bob's token", c.method, c.path)
	}
	h := http.Header{}
	h.Set("Authorization", "token "+bob.token)
	_, resp, err := websocket.DefaultDialer.Dial(strings.Replace(env.GatewayURL, "http://", "ws://", 1)+"/api/kernels/"+id+"/channels", h)
	require.Error(t, err)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "nor open its websocket")
	require.Equal(t, http.StatusOK, jupytertest.API(t, "GET", bobBase+"/api/kernels", bobToken, nil, &list))
	assert.Empty(t, list, "bob's notebook server sees none of alice's kernels")

	require.Equal(t, http.StatusOK, admin.api("GET", "/api/kernels/"+id, nil, nil), "the team's admin token sees every kernel")
	ws := channels(t, id)
	ex := ws.Execute("import os; print(os.environ['KERNEL_USERNAME'])", 2*time.Minute)
	assert.Equal(t, "alice\n", ex.Stdout, "the kernel runs for alice")

	// A team limit of one kernel per user: alice's second start is refused, bob's is not.
	policy := kubectl(t, "-n", devcluster.SystemNamespace, "get", "configmap", "elastic-jupyter-policy", "-o", "jsonpath={.data.policy\\.yaml}")
	t.Cleanup(func() { setPolicy(t, policy) })
	setPolicy(t, strings.TrimRight(policy, "\n")+"\n    maxKernelsPerUser: 1\n") // a field of the team, the last in the list
	require.Eventually(t, func() bool {
		var e map[string]any
		code := jupytertest.API(t, "POST", env.GatewayURL+"/api/kernels", secretToken(t, devcluster.NotebookName+"-gateway-token"), map[string]any{"name": "python3"}, &e)
		if code == http.StatusCreated {
			admin.api("DELETE", "/api/kernels/"+e["id"].(string), nil, nil) // the webhook had not read the policy yet
			return false
		}
		return code == http.StatusForbidden && strings.Contains(fmt.Sprint(e["message"]), "team team-a allows at most 1 kernels per user (maxKernelsPerUser) and alice has 1")
	}, time.Minute, 500*time.Millisecond, "over the limit, a start is refused with the limit's name")
	assert.Len(t, kernels(t), 1, "nothing was created")
	var m map[string]any
	require.Equal(t, http.StatusCreated, bob.api("POST", "/api/kernels", map[string]any{"name": "python3"}, &m), "bob has none")
	bob.api("DELETE", "/api/kernels/"+m["id"].(string), nil, nil)

	assertNoTokenLeaks(t, admin.token, bob.token, secretToken(t, devcluster.NotebookName+"-gateway-token"))
}

func setPolicy(t *testing.T, policy string) {
	t.Helper()
	kubectlApply(t, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: elastic-jupyter-policy, namespace: %s}\ndata:\n  policy.yaml: |\n%s",
		devcluster.SystemNamespace, indent(policy, "    ")))
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// assertNoTokenLeaks checks that no token is in a pod spec, a CR, an event, or the log of a
// component or pod.
func assertNoTokenLeaks(t *testing.T, tokens ...string) {
	t.Helper()
	for _, kind := range []string{"pods", "deployments", "configmaps", "events", "jupyterkernels", "jupyternotebooks", "jupytergateways", "jupyterkernelspecs"} {
		out := kubectl(t, "get", kind, "-A", "-o", "yaml")
		for _, tok := range tokens {
			assert.NotContains(t, out, tok, "a token appears in %s", kind)
		}
	}
	var logs []string
	_ = filepath.Walk(cluster.Config().Dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && strings.HasSuffix(p, ".log") {
			logs = append(logs, p)
		}
		return nil
	})
	require.NotEmpty(t, logs)
	for _, p := range logs {
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		for _, tok := range tokens {
			assert.NotContains(t, string(data), tok, "a token appears in %s", p)
		}
	}
}
