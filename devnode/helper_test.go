package devnode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestResolveInRoot(t *testing.T) {
	root := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(root, "run"), 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "var", "lib"), 0o755))
	require.NoError(t, os.Symlink("/run", filepath.Join(root, "var", "run")))
	require.NoError(t, os.Symlink("lib", filepath.Join(root, "var", "rel")))
	require.NoError(t, os.Symlink("../../../../../etc", filepath.Join(root, "var", "escape")))
	require.NoError(t, os.Symlink("loop", filepath.Join(root, "loop")))
	for in, want := range map[string]string{
		"/var/run/elastic-jupyter/connection": "/run/elastic-jupyter/connection",
		"/var/rel/x":                          "/var/lib/x",
		"/var/escape/passwd":                  "/etc/passwd",
		"/opt/new/dir":                        "/opt/new/dir",
		"/var/../run":                         "/run",
		"/":                                   "",
	} {
		got, err := resolveInRoot(root, in)
		require.NoError(t, err, in)
		assert.Equal(t, root+want, got, in)
	}
	_, err := resolveInRoot(root, "/loop/x")
	assert.ErrorContains(t, err, "too many symbolic links")
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	require.NoError(t, os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "data"), nil, 0o644))
	got, err := lookPath("tool", "/nonexistent:"+dir)
	require.NoError(t, err)
	assert.Equal(t, exe, got)
	_, err = lookPath("nope", dir)
	assert.EqualError(t, err, `exec: "nope": executable file not found in $PATH (`+dir+`)`)
	_, err = lookPath(filepath.Join(dir, "data"), "")
	assert.ErrorContains(t, err, "permission denied (not an executable file)")
	_, err = lookPath("/no/such/file", "")
	assert.EqualError(t, err, `exec: "/no/such/file": no such file or directory`)
}

func TestUnescapeMountinfo(t *testing.T) {
	assert.Equal(t, "/mnt/with space", unescapeMountinfo(`/mnt/with\040space`))
	assert.Equal(t, "/plain", unescapeMountinfo("/plain"))
	assert.Equal(t, `/odd\9`, unescapeMountinfo(`/odd\9`))
}

func TestReadHelperFailure(t *testing.T) {
	f, err := readHelperFailure(stringsReader(helperHello), "/bin/helper")
	require.NoError(t, err)
	assert.Nil(t, f, "a greeting, then a closed pipe, means the command was exec'd")
	f, err = readHelperFailure(stringsReader(helperHello+`{"reason":"CreateContainerError","message":"exec: \"x\": not found"}`+"\n"), "/bin/helper")
	require.NoError(t, err)
	assert.Equal(t, &helperFailure{Reason: "CreateContainerError", Message: `exec: "x": not found`}, f)
	f, err = readHelperFailure(stringsReader(helperHello+"panic: boom"), "/bin/helper")
	require.NoError(t, err)
	assert.Equal(t, "RunContainerError", f.Reason)
	assert.Contains(t, f.Message, "panic: boom")
	f, err = readHelperFailure(stringsReader(""), "/bin/helper")
	require.NoError(t, err)
	assert.Equal(t, "RunContainerError", f.Reason)
	assert.Contains(t, f.Message, "/bin/helper did not run as devnode's container helper")
}

// An executable that is not devnode's helper is reported, not mistaken for a started container.
func TestHelperPathWithoutHelper(t *testing.T) {
	sp, err := newSpawner()
	require.NoError(t, err)
	defer sp.stop()
	dir := t.TempDir()
	p, failure, err := startProc(sp, "/bin/true", &helperSpec{Argv: []string{"/bin/true"}}, filepath.Join(dir, "log"))
	require.NoError(t, err)
	assert.Nil(t, p)
	require.NotNil(t, failure)
	assert.Contains(t, failure.Message, "must call devnode.RunHelperIfRequested")
}

func stringsReader(s string) *strings.Reader { return strings.NewReader(s) }
