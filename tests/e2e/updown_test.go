package e2e

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/elastic-jupyter/elastic-jupyter/internal/kerneltest"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// TestMakeUpThenDownLeavesNothingBehind runs the README's `make up` (twice: the second run
// must be harmless) and `make down` in a state directory of its own, on free ports, while the
// package's own cluster and an unrelated process run beside it. After `make down` no process
// that `make up` started (the control plane, the devnodes, the controller, the webhook and the
// pods they ran) is alive, none of their ports is still listened on, and what make up did not
// start is untouched.
func TestMakeUpThenDownLeavesNothingBehind(t *testing.T) {
	dir := t.TempDir()
	ports, err := kerneltest.FreePorts("127.0.0.1", 8)
	require.NoError(t, err)
	vars := []string{
		"DEV_DIR=" + dir, "GPUS=1",
		"API_PORT=" + strconv.Itoa(ports[0]), "ETCD_PORT=" + strconv.Itoa(ports[1]),
		"WEBHOOK_PORT=" + strconv.Itoa(ports[3]),
		"METRICS_PORT=" + strconv.Itoa(ports[4]), "HEALTH_PORT=" + strconv.Itoa(ports[5]),
	}
	bystander := exec.Command("sleep", "3600")
	bystander.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	require.NoError(t, bystander.Start())
	t.Cleanup(func() { _ = bystander.Process.Kill(); _ = bystander.Wait() })

	downed := false
	t.Cleanup(func() {
		if !downed {
			_, _ = runMake(t, append([]string{"down"}, vars...)...)
		}
	})
	out, err := runMake(t, append([]string{"up"}, vars...)...)
	require.NoError(t, err, "make up:\n%s", out)
	envFile, err := os.ReadFile(filepath.Join(dir, "env"))
	require.NoError(t, err, "make up writes the env file")
	for _, k := range []string{"export KUBECONFIG=", "export JUPYTER_GATEWAY_URL=", "export NOTEBOOK_URL="} {
		assert.Contains(t, string(envFile), k)
	}
	for _, line := range strings.Split(string(envFile), "\n") {
		if url, ok := strings.CutPrefix(line, "export NOTEBOOK_URL="); ok {
			assert.Contains(t, out, "Open the notebook:   "+url, "make up says what to open")
		}
	}
	// What the README and make up say to type: source the env file, then kubectl.
	nodes, err := exec.Command("bash", "-c", "source "+filepath.Join(dir, "env")+" && kubectl get nodes -o name").CombinedOutput()
	require.NoError(t, err, "source env; kubectl get nodes:\n%s", nodes)
	assert.Contains(t, string(nodes), "node/", "kubectl reaches make up's cluster after sourcing the env file")
	assert.Contains(t, out, "kubectl get jupyterkernels", "make up says what to try")

	started := processTree(t, dir)
	require.GreaterOrEqual(t, len(started), 10, "the control plane, two devnodes, webhook, controller and the pods")
	listening := listenersOf(t, started)
	require.NotEmpty(t, listening)
	t.Logf("make up started %d processes listening on %d addresses", len(started), len(listening))

	out, err = runMake(t, append([]string{"up"}, vars...)...)
	require.NoError(t, err, "make up again:\n%s", out)
	for pid, p := range started {
		if p.leader {
			assert.True(t, p.alive(), "the second make up keeps %s (pid %d) running", p.comm, pid)
		}
	}
	assert.Len(t, processTree(t, dir), len(started), "the second make up starts nothing twice")

	out, err = runMake(t, append([]string{"down"}, vars...)...)
	downed = true
	require.NoError(t, err, "make down:\n%s", out)
	for pid, p := range started {
		assert.False(t, p.alive(), "%s (pid %d) outlives make down", p.comm, pid)
	}
	now := listenSockets(t)
	for addr := range listening {
		assert.NotContains(t, now, addr, "%s is still listened on after make down", addr)
	}
	assert.Nil(t, bystander.ProcessState, "a process make up did not start is left alone")
	assert.NoError(t, syscall.Kill(bystander.Process.Pid, 0), "a process make up did not start is left alone")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	kubectl := exec.CommandContext(ctx, filepath.Join(testenv.BinDir(), "kubectl"), "--kubeconfig", env.Kubeconfig, "get", "nodes")
	o, err := kubectl.CombinedOutput()
	assert.NoError(t, err, "another cluster on this machine keeps running: %s", o)
}

// runMake runs make in the repository with the given target and variables.
func runMake(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"--no-print-directory"}, args...)...)
	cmd.Dir = testenv.RepoRoot()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// process is one process of the tree make up started.
type process struct {
	pid    int
	comm   string
	start  string // the start time field of /proc/<pid>/stat, so a reused pid is not mistaken
	leader bool   // recorded in the state directory's pids/
}

func (p process) alive() bool {
	_, comm, start, state, ok := readStat(p.pid)
	return ok && start == p.start && comm == p.comm && state != "Z"
}

// readStat reads a process's parent, name, start time and state.
func readStat(pid int) (ppid int, comm, start, state string, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", "", "", false
	}
	s := string(data)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return 0, "", "", "", false
	}
	fields := strings.Fields(s[closing+1:])
	if len(fields) < 20 {
		return 0, "", "", "", false
	}
	ppid, _ = strconv.Atoi(fields[1])
	// fields[0] is the state (field 3 of stat), fields[19] the start time (field 22).
	return ppid, s[open+1 : closing], fields[19], fields[0], true
}

// processTree is every live process recorded in dir/pids and all their descendants.
func processTree(t *testing.T, dir string) map[int]process {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "pids", "*.pid"))
	require.NoError(t, err)
	require.NotEmpty(t, files, "make up records its processes")
	tree := map[int]process{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		require.NoError(t, err, f)
		if _, comm, start, state, ok := readStat(pid); ok && state != "Z" {
			tree[pid] = process{pid: pid, comm: comm, start: start, leader: true}
		}
	}
	children := map[int][]process{}
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, comm, start, state, ok := readStat(pid); ok && state != "Z" {
			children[ppid] = append(children[ppid], process{pid: pid, comm: comm, start: start})
		}
	}
	queue := make([]int, 0, len(tree))
	for pid := range tree {
		queue = append(queue, pid)
	}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			if _, seen := tree[c.pid]; !seen {
				tree[c.pid] = c
				queue = append(queue, c.pid)
			}
		}
	}
	return tree
}

// listenersOf is the addresses the given processes listen on (TCP, IPv4 and IPv6).
func listenersOf(t *testing.T, procs map[int]process) map[string]bool {
	t.Helper()
	inodes := map[string]bool{}
	for pid := range procs {
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue
		}
		for _, fd := range fds {
			target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			if err == nil && strings.HasPrefix(target, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
			}
		}
	}
	addrs := map[string]bool{}
	for addr, inode := range listenSockets(t) {
		if inodes[inode] {
			addrs[addr] = true
		}
	}
	return addrs
}

// listenSockets maps every listening TCP address on this host to its socket inode.
func listenSockets(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(file)
		if os.IsNotExist(err) {
			continue
		}
		require.NoError(t, err)
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != "0A" { // 0A: LISTEN
				continue
			}
			if addr, ok := decodeProcAddr(fields[1]); ok {
				out[addr] = fields[9]
			}
		}
		require.NoError(t, sc.Err())
		_ = f.Close()
	}
	return out
}

// decodeProcAddr turns /proc/net/tcp's "0100007F:1F90" into "127.0.0.1:8080".
func decodeProcAddr(s string) (string, bool) {
	host, port, ok := strings.Cut(s, ":")
	if !ok {
		return "", false
	}
	b, err := hex.DecodeString(host)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return "", false
	}
	// The kernel prints each 32-bit word in host (little-endian) order.
	for i := 0; i+4 <= len(b); i += 4 {
		b[i], b[i+1], b[i+2], b[i+3] = b[i+3], b[i+2], b[i+1], b[i]
	}
	p, err := strconv.ParseUint(port, 16, 16)
	if err != nil {
		return "", false
	}
	return net.JoinHostPort(net.IP(b).String(), strconv.FormatUint(p, 10)), true
}
