package v1alpha1

// A gateway knows the notebook servers that may call it from one Secret the controller keeps,
// "<gateway>-credentials" in the gateway's namespace: one key per notebook server
// ("<namespace>.<name>"), each a JSON GatewayCredential. It holds the hash of each notebook's
// token, never the token.

// GatewayCredentialsSuffix is appended to a gateway's name to name its credentials Secret.
const GatewayCredentialsSuffix = "-credentials"

// GatewayCredentialsSecretName names the credentials Secret of the gateway called gateway.
func GatewayCredentialsSecretName(gateway string) string { return gateway + GatewayCredentialsSuffix }

// GatewayCredential is one notebook server's credential, as its gateway reads it.
// +kubebuilder:object:generate=false
type GatewayCredential struct {
	// SHA256 is the lowercase hex SHA-256 of the notebook's token.
	SHA256 string `json:"sha256"`
	// Identity names the notebook server: "<namespace>/<name>". Kernels belong to it.
	Identity string `json:"identity"`
	// User is who the notebook server is for: its kernels run for this user.
	User string `json:"user"`
}
