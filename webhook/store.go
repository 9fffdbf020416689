package webhook

import (
	"context"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// DefaultPolicyConfigMap is the name of the team policy ConfigMap.
const DefaultPolicyConfigMap = "elastic-jupyter-policy"

// PolicyStore reads the team policy ConfigMap live (through the manager's cache, which watches
// only that ConfigMap) and parses each version once.
type PolicyStore struct {
	// Reader reads the ConfigMap (a cached client).
	Reader client.Reader
	// Key names the ConfigMap.
	Key types.NamespacedName

	mu      sync.Mutex
	version string
	policy  *Policy
	err     error
}

// Policy returns the current policy: an empty one when the ConfigMap does not exist, an error
// when it is invalid (kernel pods are then refused until it is fixed: GPU limits are not
// silently lifted).
func (s *PolicyStore) Policy(ctx context.Context) (*Policy, error) {
	cm := &corev1.ConfigMap{}
	if err := s.Reader.Get(ctx, s.Key, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return &Policy{}, nil
		}
		return nil, fmt.Errorf("reading the team policy %s: %w", s.Key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cm.ResourceVersion == s.version && s.version != "" {
		return s.policy, s.err
	}
	p, err := ParsePolicy([]byte(cm.Data[PolicyKey]))
	if err != nil {
		err = fmt.Errorf("the team policy ConfigMap %s is invalid, fix it: %w", s.Key, err)
	}
	s.version, s.policy, s.err = cm.ResourceVersion, p, err
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
