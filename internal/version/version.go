// Package version holds the build's version and the default images derived from it.
package version

// Version is this build's version, set with
// -ldflags "-X github.com/elastic-jupyter/elastic-jupyter/internal/version.Version=v1.2.3".
var Version = "dev"

// ImageRepository is the repository of this project's one image (controller, webhook,
// gateway, devnode and kernel-launcher).
const ImageRepository = "ghcr.io/elastic-jupyter/elastic-jupyter"

// Image returns this project's image at this build's version ("latest" for dev builds).
func Image() string {
	tag := Version
	if tag == "" || tag == "dev" {
		tag = "latest"
	}
	return ImageRepository + ":" + tag
}

// Paths of the binaries inside the image.
const (
	// BinaryPath is where the elastic-jupyter binary lives in the image.
	BinaryPath = "/usr/local/bin/elastic-jupyter"
	// LauncherPath is where the kernel-launcher binary lives in the image.
	LauncherPath = "/usr/local/bin/kernel-launcher"
)
