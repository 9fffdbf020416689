package launcher_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/launcher"
)

// notebook defines, cell by cell, what a user typically has when a kernel is suspended.
func notebook(workdir string) []string {
	return []string{
		"import os, hashlib\nimport numpy as np\nos.chdir(" + launcher.PyQuote(workdir) + ")",
		"x = 41",
		"def add(a):\n    return a + x",
		"class Point:\n    def __init__(self, x, y):\n        self.x, self.y = x, y\n    def norm2(self):\n        return self.x ** 2 + self.y ** 2\np = Point(3, 4)",
		"arr = np.random.default_rng(7).random(50 * 2**20 // 8)",
		"fh = open('notes.txt', 'w')",
		"double = lambda v: v * 2",
		"gen = (i * i for i in range(10))",
		"shared = [1, 2]\nholder = {'list': shared}",
		"x",
	}
}

func TestStateKeepsVariablesAcrossKernels(t *testing.T) {
	workdir, stateDir := t.TempDir(), filepath.Join(t.TempDir(), "state")
	statePath := filepath.Join(stateDir, launcher.StateFileName("kernel-1"))
	k1 := startStateKernel(t)
	last := 0
	for _, cell := range notebook(workdir) {
		last = k1.run(cell)
	}
	sum := k1.evalStr("hashlib.sha256(arr.tobytes()).hexdigest()")
	before := k1.names()

	rep, call := k1.state(launcher.StateSaveExpr(helper, statePath, 0))
	require.True(t, rep.OK, rep.Error)
	assert.Equal(t, launcher.StateOpSave, rep.Op)
	assert.Equal(t, "dill", rep.Serializer, "dill is the default when installed")
	assert.Equal(t, last, call.executionCount, "a silent call does not advance the count")
	onlyStatus(t, call)
	assert.Equal(t, before, k1.names(), "the helper leaves no name behind")

	kept := byName(rep.Kept)
	for name, typ := range map[string]string{"x": "int", "add": "function", "Point": "type", "p": "Point",
		"arr": "ndarray", "double": "function", "shared": "list", "holder": "dict"} {
		if assert.Contains(t, kept, name) {
			assert.Equal(t, typ, kept[name].Type, name)
		}
	}
	assert.Greater(t, kept["arr"].Bytes, int64(50<<20))
	assert.Less(t, kept["arr"].Bytes, int64(50<<20+4096), "the array's bytes, once")
	notKept := byName(rep.NotKept)
	assert.Equal(t, launcher.StateVar{Name: "fh", Type: "TextIOWrapper", Why: "an open file"}, notKept["fh"])
	assert.Equal(t, launcher.StateVar{Name: "gen", Type: "generator", Why: "a generator"}, notKept["gen"])
	assert.Len(t, rep.NotKept, 2)
	assert.ElementsMatch(t, []string{"os", "hashlib", "np"}, rep.Modules)
	st, err := os.Stat(statePath)
	require.NoError(t, err)
	assert.Equal(t, rep.Bytes, st.Size())
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm(), "the snapshot is the user's data")
	leftovers, _ := filepath.Glob(statePath + launcher.StateTempInfix + "*")
	assert.Empty(t, leftovers)

	k1.stop() // the pod is deleted
	k2 := startStateKernel(t)
	rep2, call := k2.state(launcher.StateLoadExpr(helper, statePath))
	require.True(t, rep2.OK, rep2.Error)
	onlyStatus(t, call)
	assert.Equal(t, launcher.StateOpLoad, rep2.Op)
	assert.ElementsMatch(t, []string{"x", "add", "Point", "p", "arr", "double", "shared", "holder"}, rep2.Restored)
	assert.Equal(t, rep.NotKept, rep2.NotKept, "what was lost is still reported after the restart")
	assert.Empty(t, rep2.Failed)
	assert.Equal(t, workdir, rep2.Cwd)
	assert.NoFileExists(t, statePath, "the state now lives in the kernel")

	assert.Equal(t, "41", k2.eval("x"))
	assert.Equal(t, sum, k2.evalStr("hashlib.sha256(arr.tobytes()).hexdigest()"))
	assert.Equal(t, "42", k2.eval("add(1)"), "a notebook function works and sees the restored globals")
	assert.Equal(t, "(25, True)", k2.eval("p.norm2(), isinstance(p, Point)"), "an instance keeps its class")
	assert.Equal(t, "42", k2.eval("double(21)"))
	assert.Equal(t, "True", k2.eval("holder['list'] is shared"), "objects shared between variables stay shared")
	assert.Equal(t, workdir, k2.evalStr("os.getcwd()"))
	assert.Equal(t, strconv.Itoa(last+1), k2.eval("len(In)"), "In[0] is empty, In[1..] the cells")
	assert.Equal(t, "'x'", k2.eval("In[-1]"))
	assert.Equal(t, "41", k2.eval("Out["+strconv.Itoa(last)+"]"))
	assert.Equal(t, last+1, k2.run("y = x + 1"), "the numbering continues")
	assert.Equal(t, "42", k2.eval("y"))
}

func TestStatePickleLeavesNotebookCodeOut(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), launcher.StateFileName("kernel-2"))
	k1 := startStateKernel(t)
	k1.run("import dill") // importing dill rewrites pickle's Python pickler: plain must stay plain
	for _, cell := range notebook(t.TempDir())[1:4] {
		k1.run(cell)
	}
	k1.run("double = lambda v: v * 2\npoints = [Point(1, 2)]")
	rep, _ := k1.state(launcher.StateSaveExprWith(helper, statePath, 0, "pickle"))
	require.True(t, rep.OK, rep.Error)
	assert.Equal(t, "pickle", rep.Serializer)
	assert.Equal(t, []string{"x"}, names(rep.Kept))
	notKept := byName(rep.NotKept)
	assert.Equal(t, "a function defined in the notebook: re-run its cell", notKept["add"].Why)
	assert.Equal(t, "a function defined in the notebook: re-run its cell", notKept["double"].Why)
	assert.Equal(t, "a class defined in the notebook: re-run its cell", notKept["Point"].Why)
	assert.Contains(t, notKept["p"].Why, "an instance of Point, a class defined in the notebook")
	assert.Contains(t, notKept["points"].Why, "uses class Point defined in the notebook")

	k1.stop()
	k2 := startStateKernel(t)
	rep2, _ := k2.state(launcher.StateLoadExpr(helper, statePath))
	require.True(t, rep2.OK, rep2.Error)
	assert.Equal(t, []string{"x"}, rep2.Restored)
	assert.Equal(t, []string{"dill"}, rep2.Modules)
	assert.Equal(t, "(41, False)", k2.eval("x, 'add' in dir()"))
}

func TestStateLimitLeavesBigVariablesOut(t *testing.T) {
	statePath := filepath.Join(t.TempDir(), launcher.StateFileName("kernel-3"))
	k := startStateKernel(t)
	k.run("import numpy as np\nsmall = list(range(100))\narr = np.ones(50 * 2**20 // 8)\nblob = b'x' * (12 * 2**20)\nafter = 'kept'")
	rep, _ := k.state(launcher.StateSaveExpr(helper, statePath, 10<<20))
	require.True(t, rep.OK, rep.Error)
	assert.ElementsMatch(t, []string{"small", "after"}, names(rep.Kept))
	notKept := byName(rep.NotKept)
	assert.Equal(t, "50 MiB: over the 10 MiB state limit", notKept["arr"].Why)
	assert.Equal(t, int64(50<<20), notKept["arr"].Bytes)
	assert.Equal(t, "12 MiB: over the 10 MiB state limit", notKept["blob"].Why, "measured, not written")
	assert.Greater(t, notKept["blob"].Bytes, int64(12<<20))
	assert.Less(t, rep.Bytes, int64(1<<20))

	rep2, _ := k.state(launcher.StateLoadExpr(helper, statePath))
	require.True(t, rep2.OK, rep2.Error)
	assert.ElementsMatch(t, []string{"small", "after"}, rep2.Restored)
	assert.Equal(t, "'kept'", k.eval("after"), "the record after the truncated one reads back")
}

func TestStateLoadReportsWhatFailed(t *testing.T) {
	workdir := t.TempDir()
	statePath := filepath.Join(t.TempDir(), launcher.StateFileName("kernel-4"))
	require.NoError(t, os.WriteFile(filepath.Join(workdir, "mymod.py"), []byte("class Thing:\n    pass\n"), 0o644))
	k1 := startStateKernel(t)
	k1.run("import os\nos.chdir(" + launcher.PyQuote(workdir) + ")\nimport mymod\nthing = mymod.Thing()\npair = [thing, 1]\nok = 5")
	rep, _ := k1.state(launcher.StateSaveExprWith(helper, statePath, 0, "pickle"))
	require.True(t, rep.OK, rep.Error)
	assert.ElementsMatch(t, []string{"thing", "pair", "ok"}, names(rep.Kept))
	k1.stop()

	require.NoError(t, os.Remove(filepath.Join(workdir, "mymod.py"))) // not there in the new pod
	k2 := startStateKernel(t)
	rep2, _ := k2.state(launcher.StateLoadExpr(helper, statePath))
	require.True(t, rep2.OK, rep2.Error)
	assert.Equal(t, []string{"ok"}, rep2.Restored)
	failed := byName(rep2.Failed)
	assert.Contains(t, failed["mymod"].Why, "import mymod failed: ModuleNotFoundError")
	assert.Contains(t, failed["thing"].Why, "cannot be loaded: ModuleNotFoundError")
	assert.Equal(t, "refers to a value that failed to load", failed["pair"].Why)
	assert.Equal(t, "5", k2.eval("ok"))
}

func TestStateMissingSnapshotAndRemove(t *testing.T) {
	dir := t.TempDir()
	statePath := filepath.Join(dir, launcher.StateFileName("kernel-5"))
	k := startStateKernel(t)
	rep, call := k.state(launcher.StateLoadExpr(helper, statePath))
	onlyStatus(t, call)
	assert.False(t, rep.OK)
	assert.True(t, rep.Missing)
	assert.Equal(t, "no snapshot at "+statePath, rep.Error)

	k.run("import sys\nsys.modules['dill'] = None  # as if dill were not installed\nx = 1")
	rep, _ = k.state(launcher.StateSaveExpr(helper, statePath, 0))
	require.True(t, rep.OK, rep.Error)
	assert.Equal(t, "pickle", rep.Serializer, "without dill, pickle")
	temp := statePath + launcher.StateTempInfix + "left"
	require.NoError(t, os.WriteFile(temp, nil, 0o600))
	rep, _ = k.state(launcher.StateRemoveExpr(helper, statePath))
	require.True(t, rep.OK, rep.Error)
	assert.True(t, rep.Removed)
	assert.NoFileExists(t, statePath)
	assert.NoFileExists(t, temp)
	rep, _ = k.state(launcher.StateRemoveExpr(helper, statePath))
	require.True(t, rep.OK, rep.Error)
	assert.False(t, rep.Removed)
}

func TestStateSaveFailureIsReportedNotRaised(t *testing.T) {
	dir := t.TempDir()
	blocker := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(blocker, nil, 0o600))
	k := startStateKernel(t)
	k.run("x = 1")
	// The state directory cannot be created under a regular file.
	rep, call := k.state(launcher.StateSaveExpr(helper, filepath.Join(blocker, "sub", "k.state"), 0))
	onlyStatus(t, call)
	assert.False(t, rep.OK)
	assert.Equal(t, launcher.StateOpSave, rep.Op)
	assert.Contains(t, rep.Error, "NotADirectoryError")
	rep, _ = k.state(launcher.StateSaveExprWith(helper, filepath.Join(dir, "k.state"), 0, "marshal"))
	assert.False(t, rep.OK)
	assert.Contains(t, rep.Error, "serializer must be")

	// A missing helper is the gateway's error, not a report.
	c := k.call(launcher.StateSaveExpr(filepath.Join(dir, "nohelper.py"), filepath.Join(dir, "k.state"), 0))
	_, err := launcher.ParseStateUserExpression(c.value)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "FileNotFoundError")
}

func names(vars []launcher.StateVar) []string {
	out := make([]string, 0, len(vars))
	for _, v := range vars {
		out = append(out, v.Name)
	}
	return out
}

func TestStateStreamsWithoutCopies(t *testing.T) {
	const peak = "__import__('resource').getrusage(__import__('resource').RUSAGE_SELF).ru_maxrss // 1024" // MiB
	for _, serializer := range []string{"dill", "pickle"} {
		t.Run(serializer, func(t *testing.T) {
			statePath := filepath.Join(t.TempDir(), launcher.StateFileName("kernel-6"))
			k1 := startStateKernel(t)
			k1.run("import numpy as np\narr = np.ones(64 * 2**20 // 8)")
			before := k1.eval(peak)
			rep, _ := k1.state(launcher.StateSaveExprWith(helper, statePath, 0, serializer))
			require.True(t, rep.OK, rep.Error)
			assert.InDelta(t, atoi(t, before), atoi(t, k1.eval(peak)), 16, "save streams the array: no copy of it")
			k1.stop()

			k2 := startStateKernel(t)
			k2.eval("__import__('dill') and 0") // its modules are not the array's cost
			before = k2.eval(peak)
			rep, _ = k2.state(launcher.StateLoadExpr(helper, statePath))
			require.True(t, rep.OK, rep.Error)
			assert.InDelta(t, atoi(t, before)+64, atoi(t, k2.eval(peak)), 16, "load reads the array once")
			assert.Equal(t, "(8388608.0, True)", k2.eval("arr.sum(), arr.flags.writeable"))
		})
	}
}

func atoi(t *testing.T, s string) float64 {
	n, err := strconv.Atoi(s)
	require.NoError(t, err, s)
	return float64(n)
}

func TestStateExplainsWhatItLeavesOut(t *testing.T) {
	// The helper knows CUDA tensors by their module and is_cuda, without importing torch, so a
	// stand-in torch package (torch is not installed here) is what it sees in a GPU pod.
	workdir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(workdir, "torch"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(workdir, "torch", "__init__.py"),
		[]byte("class Tensor:\n    def __init__(self, cuda):\n        self.cuda = cuda\n    is_cuda = property(lambda self: self.cuda)\n"), 0o644))
	statePath := filepath.Join(t.TempDir(), launcher.StateFileName("kernel-7"))
	k := startStateKernel(t)
	k.run("import os, sys, socket, threading\nos.chdir(" + launcher.PyQuote(workdir) + ")\nsys.path.insert(0, '.')\nimport torch\n" +
		"gpu = torch.Tensor(True)\ncpu = torch.Tensor(False)\nmodel = {'weight': gpu}\n" +
		"files = [open('notes.txt', 'w')]\nlock = threading.Lock()\nworker = threading.Thread(target=print)\n" +
		"sock = socket.socket()\nimport sqlite3\ndb = sqlite3.connect(':memory:')\nglobals()[1] = 'not a name'")
	rep, _ := k.state(launcher.StateSaveExpr(helper, statePath, 0))
	require.True(t, rep.OK, rep.Error)
	assert.Equal(t, []string{"cpu"}, names(rep.Kept))
	why := map[string]string{}
	for _, v := range rep.NotKept {
		why[v.Name] = v.Why
	}
	assert.Equal(t, map[string]string{
		"gpu":    "a CUDA tensor, re-run the cell that made it",
		"model":  "holds a CUDA tensor, re-run the cell that made it",
		"files":  "holds an open file",
		"lock":   "a lock/thread/socket",
		"worker": "a lock/thread/socket",
		"sock":   "a lock/thread/socket",
		"db":     "cannot be pickled: TypeError: cannot pickle 'sqlite3.Connection' object",
	}, why)
}
