package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const shippedTrace = "../../examples/traces/synthetic-sensei.json"

func TestSimulatePrintsTheTable(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, runSimulate([]string{"--trace", shippedTrace, "--gpus", "40"}, &out))
	lines := strings.Split(out.String(), "\n")
	assert.Contains(t, lines[0], "40 sessions")
	assert.Contains(t, lines[1], "cluster: 40 GPUs; culler every 1m, cullConnected true; a kernel is up 5s after it gets its GPUs")
	assert.Equal(t, []string{"bound per notebook -", "elastic, no culling never", "elastic, Suspend 5m",
		"elastic, Suspend 15m", "elastic, Suspend 30m", "elastic, Suspend 1h", "elastic, Delete 15m"}, rowNames(lines))

	out.Reset()
	require.NoError(t, runSimulate([]string{"--trace=" + shippedTrace, "--thresholds=1h,10m", "--policy=Delete", "--delete-at=none",
		"--cull-interval=5m", "--cull-connected=false", "--resume=0s", "--tick=30s"}, &out))
	assert.Contains(t, out.String(), "tick 30s")
	assert.Contains(t, out.String(), "cluster: as many GPUs as asked for; culler every 5m, cullConnected false; a kernel is up 0s")
	assert.Equal(t, []string{"bound per notebook -", "elastic, Delete 10m", "elastic, Delete 1h"}, rowNames(strings.Split(out.String(), "\n")))
}

// rowNames are the first two columns of the table's rows.
func rowNames(lines []string) []string {
	var rows []string
	for _, l := range lines {
		if strings.HasPrefix(l, "bound") || strings.HasPrefix(l, "elastic,") {
			c := regexp.MustCompile(`\s{2,}`).Split(l, -1)
			rows = append(rows, c[0]+" "+c[1])
		}
	}
	return rows
}

// Every bad flag is refused with its name and the fix.
func TestSimulateFlagErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"sessions": [{"id": "a", "start_tick": 5, "stop_tick": 1}]}`), 0o644))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "--trace is required"},
		{[]string{"--trace", shippedTrace, "extra"}, `unexpected arguments ["extra"]`},
		{[]string{"--trace", filepath.Join(t.TempDir(), "absent.json")}, "--trace: reading the trace: open"},
		{[]string{"--trace", bad}, `--trace: ` + bad + `: sessions[0] (id "a"): stop_tick 1 is not after start_tick 5`},
		{[]string{"--trace", shippedTrace, "--gpus", "-1"}, "--gpus -1: give the cluster's GPU count"},
		{[]string{"--trace", shippedTrace, "--gpus", "2"}, "needs 8 GPUs at once; give --gpus 8 or more"},
		{[]string{"--trace", shippedTrace, "--thresholds", "5m,soon"}, `--thresholds: "soon" is not an idle threshold: give durations such as 5m,15m,1h (or never)`},
		{[]string{"--trace", shippedTrace, "--thresholds", "-5m"}, `--thresholds: "-5m" is not an idle threshold`},
		{[]string{"--trace", shippedTrace, "--thresholds", "5m,300s"}, `--thresholds: "300s" is given twice`},
		{[]string{"--trace", shippedTrace, "--thresholds", ","}, "--thresholds is empty"},
		{[]string{"--trace", shippedTrace, "--delete-at", "never"}, "--delete-at \"never\": never is not a threshold to delete at"},
		{[]string{"--trace", shippedTrace, "--policy", "suspend"}, `--policy "suspend": write Suspend`},
		{[]string{"--trace", shippedTrace, "--policy", "Pause"}, `--policy "Pause": use Suspend (the kernel comes back on the next cell) or Delete (it ends)`},
		{[]string{"--trace", shippedTrace, "--cull-interval", "0s"}, "--cull-interval 0s: give a positive duration"},
		{[]string{"--trace", shippedTrace, "--resume", "-1s"}, "--resume -1s"},
		{[]string{"--trace", shippedTrace, "--tick", "-1s"}, "--tick -1s"},
		{[]string{"--gpus", "many"}, `invalid value "many" for flag -gpus`},
	} {
		err := runSimulate(tc.args, &bytes.Buffer{})
		assert.ErrorContains(t, err, tc.want, "%v", tc.args)
	}
}

// The README shows the table the command prints for the shipped trace; it must stay the same.
func TestReadmeShowsTheSimulateTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	const prompt = "$ elastic-jupyter simulate --trace examples/traces/synthetic-sensei.json --gpus 40\n"
	_, block, ok := strings.Cut(string(readme), prompt)
	require.True(t, ok, "the README shows %q", prompt)
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok)
	var out bytes.Buffer
	t.Chdir("../..") // the README's command runs from the repository's root
	require.NoError(t, runSimulate(strings.Fields(strings.TrimPrefix(strings.TrimSpace(prompt), "$ elastic-jupyter simulate")), &out))
	assert.Equal(t, out.String(), block, "the README's simulate table is out of date: paste the command's output")
}
