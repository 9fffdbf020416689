package jupytertest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/elastic-jupyter/elastic-jupyter/internal/rootfs"
	"github.com/elastic-jupyter/elastic-jupyter/internal/testenv"
)

// The Jupyter our users run — JupyterLab 4 on Jupyter Server 2.x — exists here only in a
// Debian trixie root filesystem that hack/rootfs.sh builds into the cache (never into the
// host). Tests run it in a private mount namespace over an overlay of that root, so the cached
// root is never written.

var rootfsOnce struct {
	sync.Once
	dir string
	err error
}

// Rootfs returns the JupyterLab 4 root filesystem, building it with hack/rootfs.sh the first
// time (a few minutes) when it is missing.
func Rootfs(t testing.TB) string {
	t.Helper()
	rootfsOnce.Do(func() { rootfsOnce.dir, rootfsOnce.err = rootfs.Ensure(testenv.RepoRoot()) })
	if rootfsOnce.err != nil {
		t.Fatal(rootfsOnce.err)
	}
	return rootfsOnce.dir
}

// RootfsCommand runs argv inside root: a private mount namespace with an overlay of root
// (its writes go to scratch, a directory of the test's), the host's /proc, /dev and network,
// and each host directory of binds mounted at its path inside. env is the whole environment.
func RootfsCommand(root, scratch string, binds map[string]string, env []string, dir string, argv ...string) *exec.Cmd {
	merged := filepath.Join(scratch, "merged")
	script := []string{
		"set -e",
		fmt.Sprintf("mkdir -p %[1]s/upper %[1]s/work %[1]s/merged", shellQuote(scratch)),
		fmt.Sprintf("mount -t overlay overlay -o lowerdir=%s,upperdir=%s/upper,workdir=%s/work %s",
			shellQuote(root), shellQuote(scratch), shellQuote(scratch), shellQuote(merged)),
		fmt.Sprintf("mount --rbind /proc %s/proc", shellQuote(merged)),
		fmt.Sprintf("mount --rbind /dev %s/dev", shellQuote(merged)),
		fmt.Sprintf("cp /etc/resolv.conf %s/etc/resolv.conf", shellQuote(merged)),
	}
	for host, inside := range binds {
		target := merged + inside
		script = append(script, fmt.Sprintf("mkdir -p %s && mount --bind %s %s", shellQuote(target), shellQuote(host), shellQuote(target)))
	}
	cd := "/"
	if dir != "" {
		cd = dir
	}
	// env -i starts from an empty environment: only env reaches the command.
	script = append(script, fmt.Sprintf("exec chroot %s /usr/bin/env -i %s sh -c %s sh %s",
		shellQuote(merged), quoteAll(env...), shellQuote("cd "+shellQuote(cd)+` && exec "$@"`), quoteAll(argv...)))
	return exec.Command("unshare", "--mount", "--propagation", "private", "--", "sh", "-c", strings.Join(script, "\n"))
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func quoteAll(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
