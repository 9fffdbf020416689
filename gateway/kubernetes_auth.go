package gateway

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"sync"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"

	ejv1 "github.com/elastic-jupyter/elastic-jupyter/api/v1alpha1"
)

// credentials are a gateway's callers, as its credentials Secret lists them (the hash of each
// notebook server's own token, and who it is), kept current by the cache's events.
type credentials struct {
	mu     sync.RWMutex
	byHash map[string]Identity
}

func (c *credentials) update(obj any) {
	if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	byHash := map[string]Identity{}
	for _, raw := range s.Data {
		var cred ejv1.GatewayCredential
		if json.Unmarshal(raw, &cred) != nil || len(cred.SHA256) != 64 || cred.Identity == "" {
			continue
		}
		byHash[cred.SHA256] = Identity{Name: cred.Identity, User: cred.User}
	}
	c.mu.Lock()
	c.byHash = byHash
	c.mu.Unlock()
}

func (c *credentials) clear(any) {
	c.mu.Lock()
	c.byHash = nil
	c.mu.Unlock()
}

func (c *credentials) handler() toolscache.ResourceEventHandler {
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc: c.update, UpdateFunc: func(_, obj any) { c.update(obj) }, DeleteFunc: c.clear,
	}
}

// lookup returns the identity of a notebook server's token.
func (c *credentials) lookup(token string) (Identity, bool) {
	sum := sha256.Sum256([]byte(token))
	h := hex.EncodeToString(sum[:])
	c.mu.RLock()
	defer c.mu.RUnlock()
	id, ok := c.byHash[h]
	return id, ok
}

// KubernetesAuth is a gateway's Authenticator on Kubernetes: the team's token (the gateway's
// own token Secret) is the admin, who sees and manages every kernel; each notebook server has
// a token of its own (the controller keeps their hashes in the gateway's credentials Secret)
// and sees only the kernels it started.
type KubernetesAuth struct {
	// TeamToken is the gateway's own token (the admin's).
	TeamToken string
	creds     *credentials
}

// Authenticate implements Authenticator.
func (a *KubernetesAuth) Authenticate(token string) (Identity, bool) {
	if token == "" {
		return Identity{}, false
	}
	if a.TeamToken != "" && subtle.ConstantTimeCompare([]byte(token), []byte(a.TeamToken)) == 1 {
		return Identity{Name: "admin", Admin: true}, true
	}
	if a.creds == nil {
		return Identity{}, false
	}
	return a.creds.lookup(token)
}

// Auth returns the gateway's Authenticator: the team token for the admin and the notebook
// servers' own tokens from the credentials Secret, followed live.
func (k *Kubernetes) Auth(teamToken string) Authenticator {
	return &KubernetesAuth{TeamToken: teamToken, creds: k.creds}
}

// NewCredentialAuth is a KubernetesAuth that learns the notebook servers' credentials from
// Update, for gateways (and tests) that read the credentials Secret themselves.
func NewCredentialAuth(teamToken string) *KubernetesAuth {
	return &KubernetesAuth{TeamToken: teamToken, creds: &credentials{}}
}

// Update replaces the notebook servers' credentials with those of the credentials Secret.
func (a *KubernetesAuth) Update(s *corev1.Secret) { a.creds.update(s) }
