package devnode

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// container is devnode's record of one container of a pod across its runs.
type container struct {
	spec *corev1.Container
	init bool
	// restarts is the status restartCount: how many times the container was started again.
	restarts int32
	// hasRun is whether a run was ever started (the next start is a restart).
	hasRun bool
	// proc is the current run; runID its container id.
	proc    *proc
	runID   string
	logPath string
	// env, uid, gid and groups of the current run, for exec probes and hooks.
	env    []string
	uid    uint32
	gid    uint32
	groups []uint32
	// waiting says why the container is not running when a start attempt failed.
	waiting *corev1.ContainerStateWaiting
	// startFailed: the last start attempt failed in a way that counts as a failed run
	// (CreateContainerError); configuration errors only make the container wait.
	startFailed bool
	// exit is the current termination (nil while running); prevExit the one before.
	exit, prevExit *corev1.ContainerStateTerminated
	// ready and started follow the readiness and startup probes of the current run.
	ready, started bool
	stopProbes     func()
	// target is where the current run's probes and hooks go.
	target probeTarget
	// backoff is the delay before the next restart; nextStart when it may happen.
	backoff   time.Duration
	nextStart time.Time
	// killReason is set when devnode ends the run on purpose (a failed liveness probe).
	killReason string
}

func (c *container) running() bool { return c.proc != nil }

func (c *container) succeeded() bool {
	return c.proc == nil && !c.startFailed && c.exit != nil && c.exit.ExitCode == 0
}

// failedRun reports whether the container's last attempt failed (a non-zero exit, or a start
// failure) and it is not running.
func (c *container) failedRun() bool {
	return c.proc == nil && (c.startFailed || (c.exit != nil && c.exit.ExitCode != 0))
}

// shouldRestart reports whether a container that is not running is to be started again.
func (c *container) shouldRestart(policy corev1.RestartPolicy) bool {
	if !c.hasRun && !c.startFailed {
		return true
	}
	switch policy {
	case corev1.RestartPolicyAlways:
		return true
	case corev1.RestartPolicyOnFailure:
		return c.failedRun()
	}
	return false
}

// command returns the container's argv, with $(VAR) references expanded.
func command(c *corev1.Container, image string, env *envList) ([]string, error) {
	if len(c.Command) == 0 {
		return nil, fmt.Errorf("container %q has no command: devnode cannot read the ENTRYPOINT or CMD of image %q, so set command (and args) in the pod spec", c.Name, image)
	}
	argv := make([]string, 0, len(c.Command)+len(c.Args))
	for _, s := range append(slices.Clone(c.Command), c.Args...) {
		argv = append(argv, expand(s, env.Lookup))
	}
	return argv, nil
}

// credentials returns the uid, gid and supplementary groups a container runs with; a
// container with runAsNonRoot that would run as root is refused.
func credentials(pod *corev1.Pod, c *corev1.Container, passwd string) (uid, gid uint32, groups []uint32, err error) {
	psc := pod.Spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	if u := effectiveUser(psc, sc); u != nil {
		uid = uint32(*u)
	}
	nonRoot := psc.RunAsNonRoot
	if sc.RunAsNonRoot != nil {
		nonRoot = sc.RunAsNonRoot
	}
	if nonRoot != nil && *nonRoot && uid == 0 {
		return 0, 0, nil, configErrorf("container %q has runAsNonRoot and would run as root: set securityContext.runAsUser to a non-zero uid (devnode cannot read the image's USER)", c.Name)
	}
	g := psc.RunAsGroup
	if sc.RunAsGroup != nil {
		g = sc.RunAsGroup
	}
	if g != nil {
		gid = uint32(*g)
	} else if _, pg, ok := lookupPasswd(passwd, uid); ok {
		gid = pg
	}
	for _, s := range psc.SupplementalGroups {
		groups = append(groups, uint32(s))
	}
	if psc.FSGroup != nil {
		groups = append(groups, uint32(*psc.FSGroup))
	}
	slices.Sort(groups)
	return uid, gid, slices.Compact(groups), nil
}

// lookupPasswd finds uid in a passwd file: its home and primary group.
func lookupPasswd(path string, uid uint32) (home string, gid uint32, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) < 6 || fields[2] != strconv.FormatUint(uint64(uid), 10) {
			continue
		}
		g, err := strconv.ParseUint(fields[3], 10, 32)
		if err != nil {
			continue
		}
		return fields[5], uint32(g), true
	}
	return "", 0, false
}

// mounts returns the bind mounts of a container's volumeMounts, shallowest target first.
func mounts(pod *corev1.Pod, c *corev1.Container, volumes map[string]string, env *envList) ([]helperMount, error) {
	readOnlyKind := map[string]bool{}
	for _, v := range pod.Spec.Volumes {
		readOnlyKind[v.Name] = v.Secret != nil || v.ConfigMap != nil || v.DownwardAPI != nil || v.Projected != nil ||
			v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ReadOnly
	}
	var out []helperMount
	for _, m := range c.VolumeMounts {
		src, ok := volumes[m.Name]
		if !ok {
			return nil, configErrorf("volumeMount %q of container %q names no volume of the pod: add the volume or fix the name", m.MountPath, c.Name)
		}
		sub := m.SubPath
		if m.SubPathExpr != "" {
			sub = expand(m.SubPathExpr, env.Lookup)
		}
		if sub != "" {
			clean := filepath.Clean(sub)
			if filepath.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
				return nil, configErrorf("volumeMount %q: subPath %q leaves the volume: use a relative path without '..'", m.MountPath, sub)
			}
			src = filepath.Join(src, clean)
			if _, err := os.Stat(src); errors.Is(err, os.ErrNotExist) {
				if err := os.MkdirAll(src, 0o777); err != nil {
					return nil, fmt.Errorf("creating subPath %s: %w", sub, err)
				}
			}
		}
		out = append(out, helperMount{Source: src, Target: m.MountPath, ReadOnly: m.ReadOnly || readOnlyKind[m.Name]})
	}
	slices.SortStableFunc(out, func(a, b helperMount) int {
		return strings.Count(filepath.Clean(a.Target), "/") - strings.Count(filepath.Clean(b.Target), "/")
	})
	return out, nil
}

// terminatedState describes a finished run.
func terminatedState(p *proc, id string, c *corev1.Container, logPath, killReason string) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{
		ExitCode:    p.exitCode,
		StartedAt:   metav1.NewTime(p.startedAt.Truncate(time.Second)),
		FinishedAt:  metav1.NewTime(time.Now().Truncate(time.Second)),
		ContainerID: id,
		Reason:      "Completed",
	}
	if p.exitCode != 0 {
		t.Reason = "Error"
	}
	if p.signal != 0 {
		t.Signal = int32(p.signal)
	}
	if killReason != "" {
		t.Message = killReason
	} else if p.exitCode != 0 && c.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		t.Message = logTail(logPath, 80, 2048)
	}
	return t
}

// logTail returns the last lines of a log, at most maxBytes.
func logTail(path string, lines, maxBytes int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(data) > maxBytes {
		data = data[len(data)-maxBytes:]
	}
	parts := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}
