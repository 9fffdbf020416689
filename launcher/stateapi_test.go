package launcher_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

func TestPyQuoteIsAPythonLiteralOfTheSamePath(t *testing.T) {
	for _, s := range []string{"", "/var/lib/elastic-jupyter/state/0b6f.state", `it's "quoted" \ back`,
		"new\nline\ttab\x00nul\x7f", "naïve/日本/😀", "bad\xffutf8\xc3", "')['remove']('/"} {
		lit := launcher.PyQuote(s)
		for _, r := range lit {
			require.Less(t, r, rune(0x7f), "ASCII only: %q", lit)
		}
		cmd := exec.Command(kerneltest.Python, "-c",
			"import ast, os, sys; sys.stdout.buffer.write(os.fsencode(ast.literal_eval(sys.stdin.read())))")
		cmd.Stdin = bytes.NewBufferString(lit)
		out, err := cmd.Output()
		require.NoError(t, err, lit)
		assert.Equal(t, []byte(s), out, lit)
	}
}

func TestStateExprs(t *testing.T) {
	const h, p = "/opt/elastic-jupyter/lib/elastic_jupyter_state.py", "/var/lib/elastic-jupyter/state/k.state"
	assert.Equal(t, "__import__('runpy').run_path('"+h+"')['save']('"+p+"', 268435456)",
		launcher.StateSaveExpr(h, p, launcher.DefaultStateMaxBytes))
	assert.Equal(t, "__import__('runpy').run_path('"+h+"')['save']('"+p+"', 0, 'pickle')",
		launcher.StateSaveExprWith(h, p, 0, "pickle"))
	assert.Equal(t, "__import__('runpy').run_path('"+h+"')['load']('"+p+"')", launcher.StateLoadExpr(h, p))
	assert.Equal(t, "__import__('runpy').run_path('"+h+"')['remove']('"+p+"')", launcher.StateRemoveExpr(h, p))
	c := launcher.StateExecuteContent("1")
	assert.Equal(t, "", c["code"])
	assert.Equal(t, true, c["silent"])
	assert.Equal(t, false, c["store_history"])
	assert.Equal(t, map[string]string{"ej": "1"}, c["user_expressions"])
	assert.Equal(t, "lib/elastic_jupyter_state.py", launcher.StateHelperFile)
	assert.Equal(t, "0b6f.state", launcher.StateFileName("0b6f"))
	assert.Equal(t, filepath.FromSlash("/opt/elastic-jupyter/lib/elastic_jupyter_state.py"),
		launcher.StateHelperInstallPath("/opt/elastic-jupyter/bin/"))
}

func TestParseStateReport(t *testing.T) {
	r, err := launcher.ParseStateReport(`{"ok":true,"op":"save","path":"/s","bytes":12,"serializer":"dill",` +
		`"kept":[{"name":"x","type":"int","bytes":5}],"not_kept":[{"name":"f","type":"TextIOWrapper","why":"an open file"}],` +
		`"modules":["np"],"execution_count":7,"seconds":0.12,"future":1}`)
	require.NoError(t, err)
	assert.Equal(t, &launcher.StateReport{OK: true, Op: "save", Path: "/s", Bytes: 12, Serializer: "dill",
		Kept:    []launcher.StateVar{{Name: "x", Type: "int", Bytes: 5}},
		NotKept: []launcher.StateVar{{Name: "f", Type: "TextIOWrapper", Why: "an open file"}},
		Modules: []string{"np"}, ExecutionCount: 7, Seconds: 0.12}, r)

	r, err = launcher.ParseStateReport(`{"ok":false,"op":"load"}`)
	require.NoError(t, err)
	assert.NotEmpty(t, r.Error, "a failure always says something")
	_, err = launcher.ParseStateReport(`'not json'`)
	assert.ErrorContains(t, err, "not JSON")
	_, err = launcher.ParseStateReport(`{"ok":true,"op":"dance"}`)
	assert.ErrorContains(t, err, `op "dance"`)

	_, err = launcher.ParseStateUserExpression(json.RawMessage(`{"status":"error","ename":"NameError","evalue":"name 'x' is not defined"}`))
	assert.ErrorContains(t, err, "NameError: name 'x' is not defined")
	_, err = launcher.ParseStateUserExpression(json.RawMessage(`{"status":"ok","data":{}}`))
	assert.ErrorContains(t, err, "no text/plain")
}

func TestStateRemoveCommand(t *testing.T) {
	dir := t.TempDir()
	files := []string{"k1.state", "k1.state.tmp-abc", "k10.state", "k1.statement", "k2.state"}
	for _, f := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o600))
	}
	out, err := exec.Command(binary, "state", "remove", "--dir", dir, "--kernel", "k1").CombinedOutput()
	require.NoError(t, err, string(out))
	assert.Contains(t, string(out), "removed "+filepath.Join(dir, "k1.state"))
	for _, f := range files {
		gone := f == "k1.state" || f == "k1.state.tmp-abc"
		_, err := os.Stat(filepath.Join(dir, f))
		assert.Equal(t, gone, os.IsNotExist(err), f)
	}

	out, err = exec.Command(binary, "state", "remove", "--dir", dir, "--kernel", "k1").CombinedOutput()
	require.NoError(t, err, "nothing to remove is not an error: %s", out)
	assert.Contains(t, string(out), "no snapshot")
	out, err = exec.Command(binary, "state", "remove", "--dir", filepath.Join(dir, "none"), "--kernel", "k1").CombinedOutput()
	require.NoError(t, err, "a missing directory has no snapshot: %s", out)

	for _, id := range []string{"../k2", ".", "..", ".hidden", "a/b"} {
		out, err = exec.Command(binary, "state", "remove", "--dir", dir, "--kernel", id).CombinedOutput()
		require.Error(t, err, id)
		assert.Contains(t, string(out), "cannot name a state file", id)
	}
	out, err = exec.Command(binary, "state", "remove", "--dir", dir).CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "usage")
	assert.FileExists(t, filepath.Join(dir, "k2.state"))
}

func TestInstallWritesTheStateHelper(t *testing.T) {
	dir := t.TempDir()
	out, err := exec.Command(binary, "install", filepath.Join(dir, "bin")).CombinedOutput()
	require.NoError(t, err, string(out))
	path := filepath.Join(dir, filepath.FromSlash(launcher.StateHelperFile))
	assert.Contains(t, string(out), "installed "+path)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, launcher.StateHelper(), data)
	leftovers, _ := filepath.Glob(filepath.Join(dir, "lib", ".*"))
	assert.Empty(t, leftovers, "written through a temp file that is gone")
	// The installed helper compiles with the kernels' Python.
	out, err = exec.Command(kerneltest.Python, "-c", "import runpy, sys; runpy.run_path(sys.argv[1])", path).CombinedOutput()
	require.NoError(t, err, string(out))
}
