package gateway

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"maps"
	"slices"
)

// Identity is who a client is: a notebook server with its own token, the team's admin, or,
// on a gateway without tokens, anyone.
type Identity struct {
	// Name identifies the credential, such as "team-a/notebook" for a notebook server or
	// "admin" for the team's token. Kernels belong to the Name that started them.
	Name string
	// User is the user the kernels of this identity run for (their spec.user and
	// KERNEL_USERNAME). Empty: the client's KERNEL_USERNAME (admins only).
	User string
	// Admin sees and manages every kernel of the gateway.
	Admin bool
}

// mayUse reports whether id may see and use k: its own kernels, or all for an admin.
func (id Identity) mayUse(k *kernel) bool {
	return id.Admin || k.owner.Name == id.Name
}

// userFor is the user a kernel started by id runs for.
func (id Identity) userFor(env map[string]string) string {
	if id.User != "" {
		return id.User
	}
	return env["KERNEL_USERNAME"]
}

// mayStart applies the kernelspec's authorized and unauthorized users (Enterprise Gateway's
// semantics: an unauthorized user is refused; with authorized users, only they may start).
func (id Identity) mayStart(spec KernelSpec, env map[string]string) error {
	user := id.userFor(env)
	if slices.Contains(spec.UnauthorizedUsers, user) {
		return &httpError{code: 403, reason: "Forbidden", err: fmt.Errorf("user %q is not authorized to start kernels of kernelspec %q (its unauthorizedUsers lists them)", user, spec.Name)}
	}
	if len(spec.AuthorizedUsers) > 0 && !slices.Contains(spec.AuthorizedUsers, user) {
		return &httpError{code: 403, reason: "Forbidden", err: fmt.Errorf("user %q is not authorized to start kernels of kernelspec %q: only %v may (its authorizedUsers)", user, spec.Name, spec.AuthorizedUsers)}
	}
	return nil
}

// kernelEnv is the client's kernel environment with KERNEL_USERNAME set to the identity's
// user: the kernel's user is who the credential says, never what the client claims.
func (id Identity) kernelEnv(env map[string]string, log *slog.Logger) map[string]string {
	if id.User == "" {
		return env
	}
	out := maps.Clone(env)
	if out == nil {
		out = map[string]string{}
	}
	if claimed, ok := out["KERNEL_USERNAME"]; ok && claimed != id.User {
		log.Info("KERNEL_USERNAME differs from the client's identity; the identity's user is used", "claimed", claimed, "user", id.User, "identity", id.Name)
	}
	out["KERNEL_USERNAME"] = id.User
	return out
}

// Authenticator tells who a client is from the token it sent.
type Authenticator interface {
	// Authenticate returns the identity of token; false when the token is wrong or missing
	// where one is needed.
	Authenticate(token string) (Identity, bool)
}

// OpenAuth lets every client in as the admin: a gateway without tokens.
type OpenAuth struct{}

// Authenticate implements Authenticator.
func (OpenAuth) Authenticate(string) (Identity, bool) {
	return Identity{Name: "admin", Admin: true}, true
}

// TokenAuth admits the holders of one token, as the admin.
type TokenAuth struct{ Token string }

// Authenticate implements Authenticator.
func (a TokenAuth) Authenticate(token string) (Identity, bool) {
	if token == "" || subtle.ConstantTimeCompare([]byte(token), []byte(a.Token)) != 1 {
		return Identity{}, false
	}
	return Identity{Name: "admin", Admin: true}, true
}

type identityKey struct{}

func withIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// identityOf is the identity the request was authenticated as.
func identityOf(ctx context.Context) Identity {
	id, _ := ctx.Value(identityKey{}).(Identity)
	return id
}
