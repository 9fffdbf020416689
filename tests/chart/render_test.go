// Package chart tests the Helm chart in charts/elastic-jupyter: helm lint, the objects it renders
// decoded into their Go types, and the chart installed, upgraded and uninstalled on a real API
// server and every rendering applied to it. Helm and kubectl run through terratest's helm and k8s
// modules (with the helm and kubectl built by hack/tools.sh); the tests keep no runner of their own.
package chart

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/gruntwork-io/terratest/modules/helm"
	"github.com/gruntwork-io/terratest/modules/k8s"
	"github.com/gruntwork-io/terratest/modules/logger"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

const (
	release   = "ej"
	namespace = "elastic-jupyter"
	// withCRDs tells helm the API knows our kinds, as on any install after the first.
	withCRDs = "kubeflow.tkestack.io/v1alpha1/JupyterGateway"
)

var (
	chartDir  = filepath.Join(testenv.RepoRoot(), "charts", "elastic-jupyter")
	valuesDir = filepath.Join(testenv.RepoRoot(), "values")
)

func TestMain(m *testing.M) {
	// terratest runs the helm on PATH: the one hack/tools.sh built.
	if err := os.Setenv("PATH", testenv.BinDir()+string(os.PathListSeparator)+os.Getenv("PATH")); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// valuesFiles is every example in values/.
func valuesFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(valuesDir, "*.yaml"))
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(files), 4, "values/ has the whole-GPU, MIG, CPU-only and multi-team examples")
	sort.Strings(files)
	return files
}

// render is the chart rendered with the values files and --set values given, as on a cluster
// that has our CRDs already.
func render(t *testing.T, files []string, set map[string]string) string {
	t.Helper()
	out, err := renderE(t, files, set, withCRDs)
	require.NoError(t, err)
	return out
}

// renderE renders the chart; apiVersions are passed to helm template's --api-versions.
func renderE(t *testing.T, files []string, set map[string]string, apiVersions ...string) (string, error) {
	t.Helper()
	var extra []string
	for _, v := range apiVersions {
		extra = append(extra, "--api-versions", v)
	}
	opts := &helm.Options{
		ValuesFiles:    files,
		SetValues:      set,
		KubectlOptions: k8s.NewKubectlOptions("", "", namespace),
		Logger:         logger.Discard,
	}
	return helm.RenderTemplateE(t, opts, chartDir, release, nil, extra...)
}

// objects decodes a rendered manifest (or any multi-document YAML of Kubernetes objects) with
// terratest's decoder.
func objects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	var objs []*unstructured.Unstructured
	helm.UnmarshalK8SYaml(t, manifest, &objs)
	return objs
}

// ofKind decodes every rendered object of kind into T.
func ofKind[T any](t *testing.T, objs []*unstructured.Unstructured, kind string) []*T {
	t.Helper()
	var out []*T
	for _, o := range objs {
		if o.GetKind() != kind {
			continue
		}
		v := new(T)
		require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, v, true),
			"%s %s decodes strictly into %T", kind, o.GetName(), v)
		out = append(out, v)
	}
	return out
}

// named is the one object of kind named name.
func named[T any](t *testing.T, objs []*unstructured.Unstructured, kind, ns, name string) *T {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name && o.GetNamespace() == ns {
			return ofKind[T](t, []*unstructured.Unstructured{o}, kind)[0]
		}
	}
	t.Fatalf("no %s %s/%s rendered", kind, ns, name)
	return nil
}

// find is the object of kind named name, or nil.
func find(objs []*unstructured.Unstructured, kind, ns, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name && o.GetNamespace() == ns {
			return o
		}
	}
	return nil
}
