package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// KernelSpec is one kind of kernel the gateway offers.
type KernelSpec struct {
	// Name identifies the kernelspec.
	Name string
	// DisplayName is what users see.
	DisplayName string
	// Language is the kernel's language.
	Language string
	// Argv is the kernel's command line, with {connection_file}.
	Argv []string
	// Env is extra environment for the kernel.
	Env map[string]string
	// InterruptMode is "signal" or "message".
	InterruptMode string
	// Metadata is kernel.json's free-form metadata.
	Metadata json.RawMessage
	// ResourceDir holds logos and other files served under /kernelspecs/{name}/ (local only).
	ResourceDir string
	// Files are files served under /kernelspecs/{name}/ besides ResourceDir's, by name (a
	// Kubernetes kernelspec's logos: logo-svg.svg, logo-64x64.png).
	Files map[string][]byte
	// AuthorizedUsers, when not empty, are the only users who may start kernels of it.
	AuthorizedUsers []string
	// UnauthorizedUsers may not start kernels of it.
	UnauthorizedUsers []string
}

// ErrNotFound means a kernel or kernelspec does not exist.
var ErrNotFound = errors.New("not found")

// SpecSource lists the kernelspecs the gateway offers.
type SpecSource interface {
	// List returns the kernelspecs and the name of the default one.
	List(ctx context.Context) ([]KernelSpec, string, error)
}

// findSpec returns the named kernelspec ("" means the default).
func findSpec(ctx context.Context, src SpecSource, name string) (KernelSpec, error) {
	specs, def, err := src.List(ctx)
	if err != nil {
		return KernelSpec{}, err
	}
	if name == "" {
		name = def
	}
	for _, s := range specs {
		if s.Name == name {
			return s, nil
		}
	}
	return KernelSpec{}, fmt.Errorf("kernelspec %q: %w", name, ErrNotFound)
}

// DirSpecSource reads kernelspecs from Jupyter kernel directories (each a folder with a
// kernel.json), as Jupyter does. Earlier directories win.
type DirSpecSource struct {
	// Dirs are the kernels directories, such as /usr/share/jupyter/kernels.
	Dirs []string
	// Default is the default kernelspec's name; empty means "python3" if present, else the
	// first by name.
	Default string
}

// DefaultKernelDirs are Jupyter's usual kernels directories.
func DefaultKernelDirs() []string {
	dirs := []string{}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, ".local", "share", "jupyter", "kernels"))
	}
	return append(dirs, "/usr/local/share/jupyter/kernels", "/usr/share/jupyter/kernels")
}

type kernelJSON struct {
	Argv          []string          `json:"argv"`
	DisplayName   string            `json:"display_name"`
	Language      string            `json:"language"`
	Env           map[string]string `json:"env"`
	InterruptMode string            `json:"interrupt_mode"`
	Metadata      json.RawMessage   `json:"metadata"`
}

// List implements SpecSource.
func (d *DirSpecSource) List(context.Context) ([]KernelSpec, string, error) {
	seen := map[string]bool{}
	var specs []KernelSpec
	for _, dir := range d.Dirs {
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name := strings.ToLower(e.Name())
			if seen[name] {
				continue
			}
			path := filepath.Join(dir, e.Name())
			data, err := os.ReadFile(filepath.Join(path, "kernel.json"))
			if err != nil {
				continue
			}
			var kj kernelJSON
			if err := json.Unmarshal(data, &kj); err != nil || len(kj.Argv) == 0 {
				continue
			}
			seen[name] = true
			specs = append(specs, KernelSpec{
				Name: name, DisplayName: kj.DisplayName, Language: kj.Language, Argv: kj.Argv,
				Env: kj.Env, InterruptMode: kj.InterruptMode, Metadata: kj.Metadata, ResourceDir: path,
			})
		}
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	def := d.Default
	if def == "" && len(specs) > 0 {
		def = specs[0].Name
		if seen["python3"] {
			def = "python3"
		}
	}
	return specs, def, nil
}
