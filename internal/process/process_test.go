package process

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

func startSh(t *testing.T, script string, s Spec) *Process {
	t.Helper()
	if s.Name == "" {
		s.Name = "sh"
	}
	s.Path, s.Args = "/bin/sh", []string{"-c", script}
	if s.Log == "" {
		s.Log = filepath.Join(t.TempDir(), "logs", "sh.log")
	}
	p, err := Start(s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Stop(time.Second) })
	return p
}

func waitDone(t *testing.T, p *Process) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not exit", p.Name)
	}
}

func readLog(t *testing.T, p *Process) string {
	t.Helper()
	data, err := os.ReadFile(p.Log)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// The output goes to the log, appended to what an earlier run left; Env adds to the
// environment and Dir is the working directory.
func TestStartLogsEnvAndDir(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "logs", "x.log")
	if err := os.MkdirAll(filepath.Dir(log), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, []byte("earlier\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startSh(t, `echo "$PROCESS_TEST $HOME"; pwd; echo oops >&2; exit 3`, Spec{Log: log, Dir: dir, Env: []string{"PROCESS_TEST=given"}})
	waitDone(t, p)
	want := "earlier\ngiven " + os.Getenv("HOME") + "\n" + dir + "\noops\n"
	if got := readLog(t, p); got != want {
		t.Errorf("log %q, want %q", got, want)
	}
	if p.Err() == nil || !strings.Contains(p.Err().Error(), "exit status 3") {
		t.Errorf("Err() = %v, want exit status 3", p.Err())
	}
	if !p.Exited() {
		t.Error("Exited() is false after Done")
	}
}

func TestStartFails(t *testing.T) {
	_, err := Start(Spec{Name: "nothing", Path: filepath.Join(t.TempDir(), "missing"), Log: filepath.Join(t.TempDir(), "x.log")})
	if err == nil || !strings.Contains(err.Error(), "starting nothing") {
		t.Fatalf("error %v, want one naming the process", err)
	}
	if _, err := Start(Spec{Name: "nolog", Path: "/bin/true"}); err == nil {
		t.Fatal("started without a log file")
	}
}

// Stop ends the whole process group: a child the process started goes too.
func TestStopEndsTheGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	p := startSh(t, `sleep 60 & echo $! > `+pidFile+`; echo started; wait`, Spec{})
	child := waitPidFile(t, pidFile)
	if !Alive(child) {
		t.Fatal("the child does not run")
	}
	if p.Exited() {
		t.Fatal("the process exited before Stop")
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if !p.Exited() {
		t.Fatal("Stop returned before the process exited")
	}
	if err := waitGone(context.Background(), child, 5*time.Second); err != nil {
		t.Errorf("the child %d outlived its group's Stop: %v", child, err)
	}
}

// A process that ignores SIGTERM is killed once the grace period is over.
func TestStopKillsAfterGrace(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "ready")
	p := startSh(t, `trap '' TERM; echo $$ > `+pidFile+`; while :; do sleep 1; done`, Spec{})
	waitPidFile(t, pidFile)
	const grace = 300 * time.Millisecond
	began := time.Now()
	if err := p.Stop(grace); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < grace {
		t.Errorf("Stop took %s, less than the grace period %s: SIGTERM was not ignored?", took, grace)
	}
	if !strings.Contains(p.Err().Error(), "killed") {
		t.Errorf("Err() = %v, want killed", p.Err())
	}
}

// Terminate stops a process by its pid alone, as `make down` stops what an earlier `make up`
// started, and is content when the pid runs nothing.
func TestTerminate(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "ready")
	p := startSh(t, `trap '' TERM; echo $$ > `+pidFile+`; while :; do sleep 1; done`, Spec{Detached: true})
	waitPidFile(t, pidFile)
	if err := Terminate(context.Background(), p.Pid(), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if Alive(p.Pid()) {
		t.Fatal("the process runs after Terminate")
	}
	waitDone(t, p)
	if err := Terminate(context.Background(), p.Pid(), time.Second); err != nil {
		t.Errorf("terminating a pid that is gone: %v", err)
	}
}

// StartCmd keeps what the caller set on the command (its output, its credentials) and adds a
// process group of its own; Kill ends the group at once.
func TestStartCmdAndKill(t *testing.T) {
	var out strings.Builder
	cmd := exec.Command("/bin/sh", "-c", `echo "$0 $PROCESS_TEST"; exit 5`)
	cmd.Env = []string{"PROCESS_TEST=mine"}
	cmd.Stdout = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(os.Getuid()), Gid: uint32(os.Getgid())}}
	p, err := StartCmd("sh", cmd)
	if err != nil {
		t.Fatal(err)
	}
	if p.ExitCode() != -1 {
		t.Errorf("ExitCode() = %d before the exit, want -1", p.ExitCode())
	}
	waitDone(t, p)
	if got := out.String(); got != "/bin/sh mine\n" {
		t.Errorf("output %q", got)
	}
	if p.ExitCode() != 5 {
		t.Errorf("ExitCode() = %d, want 5", p.ExitCode())
	}
	if cmd.SysProcAttr.Credential == nil || !cmd.SysProcAttr.Setpgid {
		t.Errorf("SysProcAttr = %+v, want the credential kept and a process group", cmd.SysProcAttr)
	}

	pidFile := filepath.Join(t.TempDir(), "child.pid")
	p, err = StartCmd("sh", exec.Command("/bin/sh", "-c", `trap '' TERM; sleep 60 & echo $! > `+pidFile+`; wait`))
	if err != nil {
		t.Fatal(err)
	}
	child := waitPidFile(t, pidFile)
	p.Kill()
	if !p.Exited() {
		t.Fatal("Kill returned before the process exited")
	}
	if err := waitGone(context.Background(), child, 5*time.Second); err != nil {
		t.Errorf("the child %d outlived Kill: %v", child, err)
	}
	if _, err := StartCmd("missing", exec.Command(filepath.Join(t.TempDir(), "missing"))); err == nil || !strings.Contains(err.Error(), "starting missing") {
		t.Errorf("error %v, want one naming the process", err)
	}
}

// A detached process leads a session of its own; an attached one only a process group.
func TestDetached(t *testing.T) {
	for _, detached := range []bool{false, true} {
		pidFile := filepath.Join(t.TempDir(), "ready")
		p := startSh(t, `echo $$ > `+pidFile+`; while :; do sleep 1; done`, Spec{Detached: detached})
		waitPidFile(t, pidFile)
		fields := statFields(t, p.Pid())
		pgrp, session := fields[2], fields[3]
		if pgrp != strconv.Itoa(p.Pid()) {
			t.Errorf("detached=%v: process group %s, want %d", detached, pgrp, p.Pid())
		}
		if got := session == strconv.Itoa(p.Pid()); got != detached {
			t.Errorf("detached=%v: leads its session: %v", detached, got)
		}
	}
}

func TestWaitHTTP(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	p := startSh(t, `while :; do sleep 1; done`, Spec{Name: "server"})
	if err := WaitHTTP(context.Background(), p, srv.URL, nil, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d requests, want 3 (two answered 503)", n)
	}

	err := WaitHTTP(context.Background(), nil, srv.URL+"/", nil, 30*time.Second)
	if err != nil {
		t.Errorf("without a process: %v", err)
	}

	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer never.Close()
	err = WaitHTTP(context.Background(), p, never.URL, nil, 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "server did not answer 200 at "+never.URL+" within 500ms; see "+p.Log) {
		t.Errorf("timeout error %v", err)
	}
}

// WaitHTTP gives up as soon as the process exits, and says so.
func TestWaitHTTPProcessExits(t *testing.T) {
	p := startSh(t, `exit 4`, Spec{Name: "crasher"})
	never := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) }))
	defer never.Close()
	began := time.Now()
	err := WaitHTTP(context.Background(), p, never.URL, nil, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "crasher exited (exit status 4)") || !strings.Contains(err.Error(), p.Log) {
		t.Fatalf("error %v, want one saying crasher exited, with its log", err)
	}
	if took := time.Since(began); took > 30*time.Second {
		t.Errorf("took %s to see the exit", took)
	}
}

// waitPidFile waits until the script wrote its pid file and returns the pid.
func waitPidFile(t *testing.T, path string) int {
	t.Helper()
	var pid int
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		data, err := os.ReadFile(path)
		if err != nil || !strings.HasSuffix(string(data), "\n") {
			return false, nil
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
		return err == nil, nil
	})
	if err != nil {
		t.Fatalf("no pid in %s: %v", path, err)
	}
	return pid
}

// statFields are the fields of /proc/PID/stat after the command name: state, ppid, pgrp,
// session, ...
func statFields(t *testing.T, pid int) []string {
	t.Helper()
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
}
