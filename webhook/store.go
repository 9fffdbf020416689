package webhook

import (
	"context"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultPolicyConfigMap is the default name of the team policy ConfigMap.
const DefaultPolicyConfigMap = "elastic-jupyter-policy"

// PolicyStore reads the team policy ConfigMap live, through a cached reader whose informer
// watches only that ConfigMap, and parses each version once. An edit applies to the next
// admission request, without a restart.
type PolicyStore struct {
	// Reader reads the ConfigMap (a cached client).
	Reader client.Reader
	// Key names the ConfigMap.
	Key types.NamespacedName
	// Log reports each new version of the policy (loaded or invalid); the zero value logs
	// nothing.
	Log logr.Logger

	mu      sync.Mutex
	version string
	policy  *Policy
	err     error
}

// Policy returns the current policy: an empty one when the ConfigMap does not exist, an error
// when it is invalid (kernel pods and kernelspecs are then refused until it is fixed, so GPU
// limits are never silently lifted by a typo).
func (s *PolicyStore) Policy(ctx context.Context) (*Policy, error) {
	cm := &corev1.ConfigMap{}
	version := ""
	if err := s.Reader.Get(ctx, s.Key, cm); err != nil {
		if !apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("reading the team policy ConfigMap %s: %w", s.Key, err)
		}
		cm = nil
	} else {
		version = cm.ResourceVersion
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.policy != nil || s.err != nil {
		if version == s.version {
			return s.policy, s.err
		}
	}
	var p *Policy
	var err error
	if cm == nil {
		p = &Policy{}
		s.Log.Info("no team policy ConfigMap: no GPU limits, no GPU by default", "configMap", s.Key.String())
	} else {
		p, err = ParsePolicy([]byte(cm.Data[PolicyKey]))
		if err != nil {
			err = fmt.Errorf("the team policy ConfigMap %s is invalid, fix it: %w", s.Key, err)
			s.Log.Error(err, "team policy refused: kernel pods and kernelspecs are refused until it is fixed", "resourceVersion", version)
		} else {
			s.Log.Info("team policy loaded", "configMap", s.Key.String(), "resourceVersion", version, "teams", len(p.Teams))
		}
	}
	s.version, s.policy, s.err = version, p, err
	return p, err
}

// Rules returns the rules of a namespace under the current policy.
func (s *PolicyStore) Rules(ctx context.Context, namespace string) (Rules, error) {
	p, err := s.Policy(ctx)
	if err != nil {
		return Rules{}, err
	}
	return p.For(namespace), nil
}
