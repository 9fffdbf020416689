package v1alpha1_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

var (
	env    *testenv.Env
	strict client.Client
)

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the control plane:", err)
		os.Exit(1)
	}
	strict = client.WithFieldValidation(env.Client, metav1.FieldValidationStrict)
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		code = 1
	}
	os.Exit(code)
}

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T) string {
	t.Helper()
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetGenerateName("crd-test-")
	require.NoError(t, env.Client.Create(context.Background(), ns))
	return ns.GetName()
}

// readManifests decodes every YAML document of the files in dir.
func readManifests(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := testenv.ReadManifests(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	return objs
}

func TestCRDsInstalledWithShortNamesAndColumns(t *testing.T) {
	ctx := context.Background()
	want := map[string]struct {
		short   string
		columns []string
	}{
		"jupyternotebooks":       {"jnb", []string{"Phase", "Ready", "Gateway", "Age"}},
		"jupytergateways":        {"jgw", []string{"Ready", "Running", "Suspended", "GPUs", "Idle-Timeout", "Policy", "Age"}},
		"jupyterkernels":         {"jk", []string{"Phase", "KernelSpec", "User", "GPUs", "State", "Idle-Since", "Age"}},
		"jupyterkernelspecs":     {"jks", []string{"Display-Name", "Language", "GPUs", "Ready", "Age"}},
		"jupyterkerneltemplates": {"jkt", []string{"Ready", "Image", "Age"}},
	}
	for plural, w := range want {
		short := w.short
		crd := &apiextensionsv1.CustomResourceDefinition{}
		require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Name: plural + ".kubeflow.tkestack.io"}, crd))
		assert.Contains(t, crd.Spec.Names.ShortNames, short, plural)
		assert.Contains(t, crd.Spec.Names.Categories, "jupyter", plural)
		require.Len(t, crd.Spec.Versions, 1)
		v := crd.Spec.Versions[0]
		assert.NotNil(t, v.Subresources.Status, "%s has a status subresource", plural)
		var cols []string
		for _, c := range v.AdditionalPrinterColumns {
			cols = append(cols, c.Name)
		}
		for _, c := range w.columns {
			assert.Contains(t, cols, c, "%s shows the column %s", plural, c)
		}
	}
}

func TestOriginalQuickStartAcceptedUnchanged(t *testing.T) {
	ctx := context.Background()
	objs := readManifests(t, "examples/original")
	require.Len(t, objs, 2)
	for _, u := range objs {
		u.SetNamespace("default")
		require.NoError(t, strict.Create(ctx, u), "%s %s", u.GetKind(), u.GetName())
	}
	gw := &ejv1.JupyterGateway{}
	require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "jupytergateway-elastic"}, gw))
	require.NotNil(t, gw.Spec.CullIdleTimeout)
	assert.EqualValues(t, 3600, *gw.Spec.CullIdleTimeout)
	assert.Equal(t, "ccr.ccs.tencentyun.com/kubeflow-oteam/enterprise-gateway:2.5.0", gw.Spec.Image)
	// Defaults the schema fills in.
	assert.Equal(t, ejv1.CullPolicyDelete, gw.Spec.CullPolicy)
	require.NotNil(t, gw.Spec.CullInterval)
	assert.EqualValues(t, 300, *gw.Spec.CullInterval)

	nb := &ejv1.JupyterNotebook{}
	require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "jupyternotebook-elastic"}, nb))
	assert.Equal(t, "jupytergateway-elastic", nb.Spec.Gateway.Name)
	assert.Equal(t, ejv1.ModeJupyterAuthDisable, nb.Spec.Auth.Mode)
}

func TestReferenceExampleOfEveryKindAccepted(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	kinds := map[string]bool{}
	for _, u := range readManifests(t, "examples/reference") {
		u.SetNamespace(ns)
		require.NoError(t, strict.Create(ctx, u), "%s %s", u.GetKind(), u.GetName())
		kinds[u.GetKind()] = true
	}
	for _, k := range []string{"JupyterNotebook", "JupyterGateway", "JupyterKernel", "JupyterKernelSpec", "JupyterKernelTemplate"} {
		assert.True(t, kinds[k], "examples/reference has a %s", k)
	}
	ks := &ejv1.JupyterKernelSpec{}
	require.NoError(t, env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "python3-gpu"}, ks))
	require.NotNil(t, ks.Spec.Resources)
	assert.EqualValues(t, 1, *ks.Spec.Resources.GPUs)
	assert.JSONEq(t, `{"debugger": true}`, string(ks.Spec.Metadata.Raw), "free-form kernelspec metadata survives pruning")
}

func TestInvalidObjectsRefusedNamingTheField(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	cases := []struct {
		name      string
		manifest  string
		wantField string
	}{
		{
			name:      "negative cullIdleTimeout",
			manifest:  `{"apiVersion":"kubeflow.tkestack.io/v1alpha1","kind":"JupyterGateway","metadata":{"name":"neg"},"spec":{"cullIdleTimeout":-1}}`,
			wantField: "spec.cullIdleTimeout",
		},
		{
			name:      "unknown auth.mode",
			manifest:  `{"apiVersion":"kubeflow.tkestack.io/v1alpha1","kind":"JupyterNotebook","metadata":{"name":"mode"},"spec":{"auth":{"mode":"sometimes"}}}`,
			wantField: "spec.auth.mode",
		},
		{
			name:      "unknown cullPolicy",
			manifest:  `{"apiVersion":"kubeflow.tkestack.io/v1alpha1","kind":"JupyterGateway","metadata":{"name":"policy"},"spec":{"cullPolicy":"Pause"}}`,
			wantField: "spec.cullPolicy",
		},
		{
			name:      "kernelspec without command",
			manifest:  `{"apiVersion":"kubeflow.tkestack.io/v1alpha1","kind":"JupyterKernelSpec","metadata":{"name":"nocmd"},"spec":{"language":"python"}}`,
			wantField: "spec.command",
		},
		{
			name:      "kernelspec with an empty command",
			manifest:  `{"apiVersion":"kubeflow.tkestack.io/v1alpha1","kind":"JupyterKernelSpec","metadata":{"name":"emptycmd"},"spec":{"command":[]}}`,
			wantField: "spec.command",
		},
		{
			name:      "unknown interruptMode",
			manifest:  `{"apiVersion":"kubeflow.tkestack.io/v1alpha1","kind":"JupyterKernelSpec","metadata":{"name":"intr"},"spec":{"command":["k"],"interruptMode":"poke"}}`,
			wantField: "spec.interruptMode",
		},
		{
			name:      "negative GPU count",
			manifest:  `{"apiVersion":"kubeflow.tkestack.io/v1alpha1","kind":"JupyterKernelSpec","metadata":{"name":"gpus"},"spec":{"command":["k"],"resources":{"gpus":-1}}}`,
			wantField: "spec.resources.gpus",
		},
		{
			name:      "unknown log level",
			manifest:  `{"apiVersion":"kubeflow.tkestack.io/v1alpha1","kind":"JupyterGateway","metadata":{"name":"loud"},"spec":{"logLevel":"LOUD"}}`,
			wantField: "spec.logLevel",
		},
		{
			name:      "misspelt field under strict validation",
			manifest:  `{"apiVersion":"kubeflow.tkestack.io/v1alpha1","kind":"JupyterGateway","metadata":{"name":"typo"},"spec":{"cullIdleTimout":10}}`,
			wantField: "spec.cullIdleTimout",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			require.NoError(t, u.UnmarshalJSON([]byte(tc.manifest)))
			u.SetNamespace(ns)
			err := strict.Create(ctx, u)
			require.Error(t, err, "the API server accepted %s", tc.manifest)
			assert.Contains(t, err.Error(), tc.wantField)
		})
	}
}

func TestEmbeddedPodTemplateMetadataSurvivesRoundTrip(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	labels := map[string]string{"team": "vision", "app.kubernetes.io/component": "kernel"}
	annotations := map[string]string{"example.com/cost-center": "ml-42"}

	tmpl := &ejv1.JupyterKernelTemplate{}
	tmpl.Name, tmpl.Namespace = "meta", ns
	tmpl.Spec.Template = podTemplate(labels, annotations)
	require.NoError(t, strict.Create(ctx, tmpl))

	kernel := &ejv1.JupyterKernel{}
	kernel.Name, kernel.Namespace = "6f1c2f39-1a0e-4d55-9d8a-0b4b4f0e6c11", ns
	kernel.Spec.Template = podTemplate(labels, annotations)
	require.NoError(t, strict.Create(ctx, kernel))

	nb := &ejv1.JupyterNotebook{}
	nb.Name, nb.Namespace = "meta", ns
	nb.Spec.Template = podTemplate(labels, annotations)
	require.NoError(t, strict.Create(ctx, nb))

	gotTmpl := &ejv1.JupyterKernelTemplate{}
	require.NoError(t, env.Client.Get(ctx, client.ObjectKeyFromObject(tmpl), gotTmpl))
	assert.Equal(t, labels, gotTmpl.Spec.Template.Labels)
	assert.Equal(t, annotations, gotTmpl.Spec.Template.Annotations)

	gotKernel := &ejv1.JupyterKernel{}
	require.NoError(t, env.Client.Get(ctx, client.ObjectKeyFromObject(kernel), gotKernel))
	assert.Equal(t, labels, gotKernel.Spec.Template.Labels)
	assert.Equal(t, annotations, gotKernel.Spec.Template.Annotations)

	gotNB := &ejv1.JupyterNotebook{}
	require.NoError(t, env.Client.Get(ctx, client.ObjectKeyFromObject(nb), gotNB))
	assert.Equal(t, labels, gotNB.Spec.Template.Labels)
	assert.Equal(t, annotations, gotNB.Spec.Template.Annotations)
}

func TestStatusIsASubresource(t *testing.T) {
	ctx := context.Background()
	ns := namespace(t)
	k := &ejv1.JupyterKernel{}
	k.Name, k.Namespace = "3b0a3c1e-8f5e-4b53-a5a7-0c1d2e3f4a5b", ns
	k.Status.Phase = ejv1.KernelRunning
	require.NoError(t, env.Client.Create(ctx, k))
	assert.Empty(t, k.Status.Phase, "status is not written through the main resource")

	k.Status.Phase = ejv1.KernelSuspended
	k.Status.GPUs = 0
	require.NoError(t, env.Client.Status().Update(ctx, k))
	got := &ejv1.JupyterKernel{}
	require.NoError(t, env.Client.Get(ctx, client.ObjectKeyFromObject(k), got))
	assert.Equal(t, ejv1.KernelSuspended, got.Status.Phase)
}
