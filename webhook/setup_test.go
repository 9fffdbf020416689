package webhook

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOptionsValidate(t *testing.T) {
	certs := t.TempDir()
	for _, f := range []string{"tls.crt", "tls.key"} {
		require.NoError(t, os.WriteFile(filepath.Join(certs, f), []byte("x"), 0o600))
	}
	ok := Options{PolicyNamespace: "elastic-jupyter-system", Port: DefaultPort, CertDir: certs}
	cases := []struct {
		name string
		mod  func(*Options)
		want []string
	}{
		{"valid", func(*Options) {}, nil},
		{"no cert dir: controller-runtime's default", func(o *Options) { o.CertDir = "" }, nil},
		{"no policy namespace", func(o *Options) { o.PolicyNamespace = "" }, []string{"--policy-namespace is empty", "POD_NAMESPACE"}},
		{"a bad policy namespace", func(o *Options) { o.PolicyNamespace = "Not_A_Namespace" }, []string{"--policy-namespace \"Not_A_Namespace\""}},
		{"a bad ConfigMap name", func(o *Options) { o.PolicyConfigMap = "a/b" }, []string{"--policy-configmap"}},
		{"a bad port", func(o *Options) { o.Port = 70000 }, []string{"--port 70000", "1-65535"}},
		{"a cert dir without the files", func(o *Options) { o.CertDir = t.TempDir() }, []string{"has no readable tls.crt", "has no readable tls.key", "serving certificate Secret"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.mod(&o)
			err := o.Validate()
			if tc.want == nil {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestEveryValidatedKindHasAValidator(t *testing.T) {
	var kinds []string
	for _, w := range kindWebhooks(&deps{}) {
		kinds = append(kinds, w.kind)
	}
	assert.ElementsMatch(t, ValidatedKinds(), kinds)
	assert.True(t, slices.Contains(ValidatedKinds(), "JupyterKernelSpec"))
	assert.Equal(t, "/validate-kubeflow-tkestack-io-v1alpha1-jupyterkernelspec", ValidatePath("JupyterKernelSpec"))
}
