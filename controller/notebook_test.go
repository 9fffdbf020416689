package controller_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/controller"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// applyManifests creates the objects of the YAML files in dir (relative to the repository).
func applyManifests(t *testing.T, dir, ns string) {
	t.Helper()
	objs, err := testenv.ReadManifests(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	for _, u := range objs {
		u.SetNamespace(ns)
		require.NoError(t, k8s.Create(context.Background(), u), "%s %s", u.GetKind(), u.GetName())
	}
}

// env returns a container's variable by name.
func envVar(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func TestOriginalManifestsMakeTheOriginalDeploymentsAndServices(t *testing.T) {
	// The original notebook names its gateway's namespace: default.
	applyManifests(t, "examples/original", "default")

	gw := exists(t, "default", "jupytergateway-elastic", &ejv1.JupyterGateway{})
	gd := exists(t, "default", "jupytergateway-elastic", &appsv1.Deployment{})
	assertControlledBy(t, gd, gw)
	assert.Equal(t, "example.com/elastic-jupyter:test", gd.Spec.Template.Spec.Containers[0].Image,
		"Enterprise Gateway's image, which the original names, is replaced by this project's: elastic-jupyter runs its own gateway")
	exists(t, "default", "jupytergateway-elastic", &corev1.Service{})

	nb := exists(t, "default", "jupyternotebook-elastic", &ejv1.JupyterNotebook{})
	nd := exists(t, "default", "jupyternotebook-elastic", &appsv1.Deployment{})
	assertControlledBy(t, nd, nb)
	assert.EqualValues(t, 1, *nd.Spec.Replicas)
	svc := exists(t, "default", "jupyternotebook-elastic", &corev1.Service{})
	assert.EqualValues(t, 8888, svc.Spec.Ports[0].Port)

	c := nd.Spec.Template.Spec.Containers[0]
	url := envVar(c, "JUPYTER_GATEWAY_URL")
	require.NotNil(t, url, "the notebook is pointed at its gateway")
	assert.Equal(t, "http://jupytergateway-elastic.default.svc:8888", url.Value)
	assert.Nil(t, envVar(c, "JUPYTER_GATEWAY_AUTH_TOKEN"), "the gateway token is in no environment variable")
	file := envVar(c, controller.EnvGatewayTokenFile)
	require.NotNil(t, file, "the notebook reads its own gateway token from a file")
	assert.Equal(t, controller.NotebookGatewayTokenDir+"/token", file.Value)
	own := exists(t, "default", "jupyternotebook-elastic-gateway-token", &corev1.Secret{})
	assertControlledBy(t, own, nb)
	assert.Equal(t, "example.com/notebook:test", c.Image, "the controller's --notebook-image is the default")
	assert.Equal(t, []string{"jupyter", "notebook", "--ip=$(NOTEBOOK_IP)", "--port=8888", "--no-browser"}, c.Command)
	assert.Contains(t, c.Env, corev1.EnvVar{Name: controller.EnvNotebookIP, Value: "0.0.0.0"},
		"it listens on every address by default, so kubectl port-forward reaches it")
	assert.Contains(t, c.Args, "--NotebookApp.token=", "auth mode disable turns the token off")
	assert.Contains(t, c.Args, "--NotebookApp.password=")
	assert.Equal(t, "/api", c.ReadinessProbe.HTTPGet.Path)
	assert.True(t, *nd.Spec.Template.Spec.SecurityContext.RunAsNonRoot)

	nb = eventually(t, client.ObjectKeyFromObject(nb), &ejv1.JupyterNotebook{}, func(n *ejv1.JupyterNotebook) bool {
		return n.Status.ObservedGeneration == n.Generation && n.Status.Phase != ""
	}, "the notebook reports a status")
	assert.Equal(t, ejv1.NotebookPending, nb.Status.Phase)
	assert.Equal(t, "http://jupytergateway-elastic.default.svc:8888", nb.Status.GatewayURL)
	assert.Equal(t, "http://jupyternotebook-elastic.default.svc:8888", nb.Status.URL)
}

func TestNotebookAuthSecrets(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)

	// No gateway, auth enabled without credentials: a random token in <nb>-auth.
	plain := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "plain", Namespace: ns}}
	require.NoError(t, k8s.Create(ctx, plain))
	s := exists(t, ns, "plain-auth", &corev1.Secret{})
	assertControlledBy(t, s, plain)
	assert.Regexp(t, "^[0-9a-f]{64}$", string(s.Data["token"]))
	d := exists(t, ns, "plain", &appsv1.Deployment{})
	c := d.Spec.Template.Spec.Containers[0]
	assert.Nil(t, envVar(c, "JUPYTER_GATEWAY_URL"), "no gateway, no gateway URL")
	tok := envVar(c, "JUPYTER_TOKEN")
	require.NotNil(t, tok)
	assert.Equal(t, "plain-auth", tok.ValueFrom.SecretKeyRef.Name)
	assert.Empty(t, tok.Value)
	exists(t, ns, "plain-config", &corev1.ConfigMap{})

	// Literal credentials (the original project's fields) go into the Secret, not the pod.
	literal := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "literal", Namespace: ns}}
	literal.Spec.Auth = &ejv1.JupyterAuth{Mode: ejv1.ModeJupyterAuthEnable, Token: ptr.To("literal-token-123"), Password: ptr.To("pw-456")}
	require.NoError(t, k8s.Create(ctx, literal))
	s = exists(t, ns, "literal-auth", &corev1.Secret{})
	assert.Equal(t, "literal-token-123", string(s.Data["token"]))
	assert.Equal(t, "pw-456", string(s.Data["password"]))
	d = exists(t, ns, "literal", &appsv1.Deployment{})
	assertNotIn(t, d, "literal-token-123", "pw-456")

	// A Secret the user names must exist.
	ref := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "ref", Namespace: ns}}
	ref.Spec.Auth = &ejv1.JupyterAuth{SecretRef: &corev1.LocalObjectReference{Name: "mine"}}
	require.NoError(t, k8s.Create(ctx, ref))
	got := eventually(t, client.ObjectKeyFromObject(ref), &ejv1.JupyterNotebook{}, func(n *ejv1.JupyterNotebook) bool {
		return meta.FindStatusCondition(n.Status.Conditions, ejv1.ConditionReady) != nil
	}, "the notebook reports its missing Secret")
	cond := meta.FindStatusCondition(got.Status.Conditions, ejv1.ConditionReady)
	assert.Equal(t, "AuthSecretNotFound", cond.Reason)
	assert.Contains(t, cond.Message, "mine")
	mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "mine", Namespace: ns}, StringData: map[string]string{"token": "t"}}
	require.NoError(t, k8s.Create(ctx, mine))
	d = exists(t, ns, "ref", &appsv1.Deployment{})
	assert.Equal(t, "mine", envVar(d.Spec.Template.Spec.Containers[0], "JUPYTER_TOKEN").ValueFrom.SecretKeyRef.Name)
	require.NoError(t, k8s.Get(ctx, client.ObjectKeyFromObject(mine), mine))
	assert.Nil(t, metav1.GetControllerOf(mine), "a Secret of the user's is not taken over")
}

// TestEachNotebookHasItsOwnGatewayToken: a notebook of another namespace than its gateway's,
// and one of the gateway's own, each get a token of their own (never the gateway's shared
// one), mounted as a file; the gateway's credentials Secret holds each token's hash and who
// the notebook is for, and follows the notebooks as they come and go.
func TestEachNotebookHasItsOwnGatewayToken(t *testing.T) {
	ctx := context.Background()
	gwNS, nbNS := newNamespace(t), newNamespace(t)
	require.NoError(t, k8s.Create(ctx, newGateway(gwNS, "shared")))
	nb := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "bob", Namespace: nbNS}}
	nb.Spec.Gateway = &corev1.ObjectReference{Name: "shared", Namespace: gwNS}
	nb.Spec.User = "bob@example.com"
	nb.Spec.Template = &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"user": "bob"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name:      "notebook",
			Image:     "example.com/my-notebook:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}},
		}}},
	}
	require.NoError(t, k8s.Create(ctx, nb))
	local := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: gwNS, Labels: map[string]string{ejv1.LabelUser: "alice"}}}
	local.Spec.Gateway = &corev1.ObjectReference{Name: "shared"}
	require.NoError(t, k8s.Create(ctx, local))

	shared := exists(t, gwNS, "shared-token", &corev1.Secret{})
	bobTok := eventually(t, client.ObjectKey{Namespace: nbNS, Name: "bob-gateway-token"}, &corev1.Secret{}, func(s *corev1.Secret) bool {
		return len(s.Data["token"]) > 0
	}, "bob's notebook gets a gateway token of its own")
	aliceTok := eventually(t, client.ObjectKey{Namespace: gwNS, Name: "alice-gateway-token"}, &corev1.Secret{}, func(s *corev1.Secret) bool {
		return len(s.Data["token"]) > 0
	}, "so does alice's, in the gateway's namespace")
	assert.NotEqual(t, shared.Data["token"], bobTok.Data["token"], "not the gateway's shared token")
	assert.NotEqual(t, aliceTok.Data["token"], bobTok.Data["token"])
	assertControlledBy(t, bobTok, nb)

	d := exists(t, nbNS, "bob", &appsv1.Deployment{})
	tmpl := d.Spec.Template
	assert.Equal(t, "bob", tmpl.Labels["user"], "the template's labels are kept")
	c := tmpl.Spec.Containers[0]
	assert.Equal(t, "example.com/my-notebook:1", c.Image, "the template's image wins")
	assert.Equal(t, "500m", c.Resources.Requests.Cpu().String(), "the template's resources win")
	assert.Equal(t, "256Mi", c.Resources.Requests.Memory().String(), "defaults fill in the rest")
	assert.Equal(t, "http://shared."+gwNS+".svc:8888", envVar(c, "JUPYTER_GATEWAY_URL").Value)
	assert.Equal(t, controller.NotebookGatewayTokenDir+"/token", envVar(c, controller.EnvGatewayTokenFile).Value)
	assertNotIn(t, d, string(shared.Data["token"]), string(bobTok.Data["token"]))

	hash := func(tok []byte) string { sum := sha256.Sum256(tok); return hex.EncodeToString(sum[:]) }
	creds := eventually(t, client.ObjectKey{Namespace: gwNS, Name: "shared-credentials"}, &corev1.Secret{}, func(s *corev1.Secret) bool {
		return len(s.Data) == 2
	}, "the gateway's credentials list both notebooks")
	var bob, alice ejv1.GatewayCredential
	require.NoError(t, json.Unmarshal(creds.Data[nbNS+".bob"], &bob))
	require.NoError(t, json.Unmarshal(creds.Data[gwNS+".alice"], &alice))
	assert.Equal(t, ejv1.GatewayCredential{SHA256: hash(bobTok.Data["token"]), Identity: nbNS + "/bob", User: "bob@example.com"}, bob)
	assert.Equal(t, ejv1.GatewayCredential{SHA256: hash(aliceTok.Data["token"]), Identity: gwNS + "/alice", User: "alice"}, alice, "the user label")
	assertNotIn(t, creds, string(bobTok.Data["token"]), string(aliceTok.Data["token"]))
	assertControlledBy(t, creds, exists(t, gwNS, "shared", &ejv1.JupyterGateway{}))

	require.NoError(t, k8s.Delete(ctx, nb))
	eventually(t, client.ObjectKeyFromObject(creds), &corev1.Secret{}, func(s *corev1.Secret) bool {
		_, still := s.Data[nbNS+".bob"]
		return len(s.Data) == 1 && !still
	}, "a deleted notebook's credential goes")
}

func TestNotebookWaitsForItsGateway(t *testing.T) {
	ctx := context.Background()
	ns := newNamespace(t)
	nb := &ejv1.JupyterNotebook{ObjectMeta: metav1.ObjectMeta{Name: "early", Namespace: ns}}
	nb.Spec.Gateway = &corev1.ObjectReference{Name: "late"}
	require.NoError(t, k8s.Create(ctx, nb))
	got := eventually(t, client.ObjectKeyFromObject(nb), &ejv1.JupyterNotebook{}, func(n *ejv1.JupyterNotebook) bool {
		c := meta.FindStatusCondition(n.Status.Conditions, ejv1.ConditionReady)
		return c != nil && c.Reason == "GatewayNotFound"
	}, "a notebook whose gateway is missing says so")
	assert.Equal(t, ejv1.NotebookPending, got.Status.Phase)
	assertEvent(t, nb, "GatewayNotFound")

	require.NoError(t, k8s.Create(ctx, newGateway(ns, "late")))
	d := exists(t, ns, "early", &appsv1.Deployment{})
	assert.Equal(t, "http://late."+ns+".svc:8888", envVar(d.Spec.Template.Spec.Containers[0], "JUPYTER_GATEWAY_URL").Value)
}
