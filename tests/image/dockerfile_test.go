// Package image checks the Dockerfile against what the code and the chart expect of the image.
// There is no container runtime here to build it, so the test runs the Dockerfile's own build
// command and inspects what it makes.
package image

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
	"github.com/elastic-jupyter/elastic-jupyter/internal/version"
)

const module = "github.com/elastic-jupyter/elastic-jupyter"

// stages splits the Dockerfile into its build stages' instructions (comments dropped,
// continuation lines joined).
func stages(t *testing.T) [][]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "Dockerfile"))
	require.NoError(t, err)
	text := regexp.MustCompile(`\\\n\s*`).ReplaceAllString(string(data), " ")
	var out [][]string
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "FROM ") {
			out = append(out, nil)
		}
		require.NotEmpty(t, out, "the Dockerfile starts with FROM")
		out[len(out)-1] = append(out[len(out)-1], line)
	}
	return out
}

func TestDockerfileIsMultiStageStaticAndNonRoot(t *testing.T) {
	st := stages(t)
	require.Len(t, st, 2, "a build stage and a minimal runtime stage")
	build, final := strings.Join(st[0], "\n"), strings.Join(st[1], "\n")

	gomod, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "go.mod"))
	require.NoError(t, err)
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindStringSubmatch(string(gomod))[1]
	assert.Contains(t, st[0][0], "golang:"+goVersion, "the build stage has go.mod's Go")
	assert.Contains(t, build, "CGO_ENABLED=0", "static binaries")

	assert.Regexp(t, `^FROM (gcr\.io/distroless/static|scratch)`, st[1][0], "a minimal base")
	assert.Regexp(t, `(?m)^USER 65532(:65532)?$`, final, "runs as the non-root uid the chart's pods use")
	// The binaries land where the controller, the webhook and the chart run them.
	assert.Regexp(t, `(?m)^COPY --from=\S+ /out/elastic-jupyter /out/kernel-launcher `+regexp.QuoteMeta(filepath.Dir(version.BinaryPath))+`/$`, final)
	assert.Equal(t, filepath.Dir(version.BinaryPath), filepath.Dir(version.LauncherPath))
	assert.Contains(t, final, `ENTRYPOINT ["`+version.BinaryPath+`"]`)

	// Every package the binaries are built from is copied into the build stage.
	list := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "./cmd/elastic-jupyter", "./cmd/kernel-launcher")
	list.Dir = testenv.RepoRoot()
	out, err := list.Output()
	require.NoError(t, err)
	copied := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^COPY (\S+)/ `).FindAllStringSubmatch(build, -1) {
		copied[m[1]] = true
	}
	for _, pkg := range strings.Fields(string(out)) {
		assert.NotEqual(t, module+"/devnode", pkg, "devnode is a development tool (cmd/devnode), not part of the image")
		if rest, ok := strings.CutPrefix(pkg, module+"/"); ok {
			top, _, _ := strings.Cut(rest, "/")
			assert.True(t, copied[top], "the build stage copies %s/ (needed by %s)", top, pkg)
		}
	}

	// The build command makes static executables.
	run := regexp.MustCompile(`(?m)^RUN (go build .*)$`).FindStringSubmatch(build)
	require.NotNil(t, run, "the build stage runs go build")
	dir := t.TempDir()
	script := strings.NewReplacer("/out/", dir+"/", "${VERSION}", "test").Replace(run[1])
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = testenv.RepoRoot()
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	o, err := cmd.CombinedOutput()
	require.NoError(t, err, string(o))
	for _, bin := range []string{"elastic-jupyter", "kernel-launcher"} {
		f, err := elf.Open(filepath.Join(dir, bin))
		require.NoError(t, err)
		for _, p := range f.Progs {
			assert.NotEqual(t, elf.PT_INTERP, p.Type, "%s is static: no dynamic loader", bin)
		}
		_ = f.Close()
	}
	v, err := exec.Command(filepath.Join(dir, "elastic-jupyter"), "version").CombinedOutput()
	require.NoError(t, err, string(v))
	assert.Contains(t, string(v), "test", "the version is stamped in")
}
