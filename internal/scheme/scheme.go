// Package scheme builds the runtime.Scheme every elastic-jupyter component uses: the
// Kubernetes types client-go knows, and the elastic-jupyter API (api/v1alpha1). The
// controller's and the webhook's managers, the gateway's client and cache, and the test
// control plane all start from New, so that a type registered for one is registered for all.
package scheme

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

var builder = runtime.NewSchemeBuilder(clientgoscheme.AddToScheme, ejv1.AddToScheme)

// AddToScheme adds the Kubernetes and elastic-jupyter types to a scheme.
var AddToScheme = builder.AddToScheme

// New returns a scheme holding the Kubernetes and elastic-jupyter types.
func New() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		return nil, fmt.Errorf("building the scheme of the Kubernetes and elastic-jupyter types: %w", err)
	}
	return s, nil
}
