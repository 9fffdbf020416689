package gateway

import (
	"time"
)

// Cull policies.
const (
	// CullDelete shuts a culled kernel down.
	CullDelete = "Delete"
	// CullSuspend frees a culled kernel's pod and keeps the kernel, which resumes on the next
	// message.
	CullSuspend = "Suspend"
)

// Settings are the gateway's live settings.
type Settings struct {
	// CullIdleTimeout culls kernels idle longer than this; 0 disables culling.
	CullIdleTimeout time.Duration
	// CullInterval is how often the culler looks (Jupyter: <= 0 means 300 s).
	CullInterval time.Duration
	// CullConnected also culls kernels with connected clients.
	CullConnected bool
	// CullBusy also culls busy kernels.
	CullBusy bool
	// CullPolicy is CullDelete or CullSuspend.
	CullPolicy string
	// LaunchTimeout bounds a kernel start; a client's KERNEL_LAUNCH_TIMEOUT may shorten it.
	LaunchTimeout time.Duration
	// AllowedEnv lists variable names beyond KERNEL_* that clients may pass.
	AllowedEnv []string
	// AllowedOrigins lists the browser origins (scheme://host[:port], or "*") whose pages may
	// open kernel websockets, besides the gateway's own host. Clients that send no Origin
	// (notebook servers) are not affected.
	AllowedOrigins []string
}

// withDefaults fills in Jupyter's defaults.
func (s Settings) withDefaults() Settings {
	if s.CullInterval <= 0 {
		s.CullInterval = 300 * time.Second
	}
	if s.CullPolicy == "" {
		s.CullPolicy = CullDelete
	}
	if s.LaunchTimeout <= 0 {
		s.LaunchTimeout = 300 * time.Second
	}
	return s
}

// WithDefaults returns the settings with Jupyter's defaults filled in, as the gateway applies
// them.
func (s Settings) WithDefaults() Settings { return s.withDefaults() }

// SettingsSource gives the current settings; a Kubernetes source follows the gateway's own
// JupyterGateway, so an edit applies without a restart.
type SettingsSource interface {
	Settings() Settings
}

// StaticSettings is a SettingsSource that never changes.
type StaticSettings Settings

// Settings implements SettingsSource.
func (s StaticSettings) Settings() Settings { return Settings(s) }
