package shim_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/nodeagent/nodeagent/oci/shim"
)

// criLine is one CRI log line: time, stream, tag, content.
var criLine = regexp.MustCompile(`^(\S+) (stdout|stderr) (P|F) (.*)$`)

func readLog(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		m := criLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("not a CRI log line: %q", line)
		}
		if _, err := time.Parse(time.RFC3339Nano, m[1]); err != nil {
			t.Fatalf("log time %q: %v", m[1], err)
		}
		out = append(out, m[2]+" "+m[3]+" "+m[4])
	}
	return out
}

func TestExitCodeAndLogs(t *testing.T) {
	e := newEnv(t)
	c := e.launch()
	logPath := e.run(c, "exit3", []string{"sh", "-c", "echo hi; echo err >&2; exit 3"})
	st := waitStopped(t, c, "exit3")
	if st.ExitCode != 3 || st.Reason != shim.ReasonError {
		t.Errorf("exit: got code %d reason %q, want 3 Error", st.ExitCode, st.Reason)
	}
	if st.StartedAt.IsZero() || st.ExitedAt.Before(st.StartedAt) {
		t.Errorf("times: started %v exited %v", st.StartedAt, st.ExitedAt)
	}
	got := readLog(t, logPath)
	// stdout and stderr are copied independently: only per-stream order holds.
	want := map[string]bool{"stdout F hi": true, "stderr F err": true}
	if len(got) != 2 || !want[got[0]] || !want[got[1]] {
		t.Errorf("log lines: got %q", got)
	}
	recs, err := shim.ExitRecords(e.stateDir)
	if err != nil || len(recs) != 1 || recs[0].ExitCode != 3 {
		t.Errorf("exit records: %+v, %v", recs, err)
	}
}

func TestCompletedAndTTY(t *testing.T) {
	e := newEnv(t)
	c := e.launch()
	logPath := e.run(c, "tty", []string{"sh", "-c", "echo tty-hi"}, tty)
	st := waitStopped(t, c, "tty")
	if st.ExitCode != 0 || st.Reason != shim.ReasonCompleted {
		t.Errorf("exit: got code %d reason %q, want 0 Completed", st.ExitCode, st.Reason)
	}
	if got := readLog(t, logPath); len(got) != 1 || got[0] != "stdout F tty-hi" {
		t.Errorf("tty log: got %q", got)
	}
}

func TestKill(t *testing.T) {
	e := newEnv(t)
	c := e.launch()
	// A pid namespace's init ignores SIGTERM without a handler: this one
	// shares the host's, so the signal kills it.
	e.run(c, "term", []string{"sleep", "1000"}, hostPID)
	e.run(c, "kill", []string{"sleep", "1000"})
	if err := c.Kill(ctx(t), "term", syscall.SIGTERM, false); err != nil {
		t.Fatal(err)
	}
	if st := waitStopped(t, c, "term"); st.ExitCode != 143 || st.Reason != shim.ReasonError {
		t.Errorf("SIGTERM: got %d %q, want 143 Error", st.ExitCode, st.Reason)
	}
	if err := c.Kill(ctx(t), "kill", syscall.SIGKILL, true); err != nil {
		t.Fatal(err)
	}
	if st := waitStopped(t, c, "kill"); st.ExitCode != 137 {
		t.Errorf("SIGKILL: got %d, want 137", st.ExitCode)
	}
	// Signalling a stopped container is nothing to do.
	if err := c.Kill(ctx(t), "kill", syscall.SIGKILL, false); err != nil {
		t.Errorf("Kill of a stopped container: %v", err)
	}
}

func TestExecSync(t *testing.T) {
	e := newEnv(t)
	c := e.launch()
	e.run(c, "box", []string{"sleep", "1000"})

	stdout, stderr, code, err := c.ExecSync(ctx(t), "box", *process("sh", "-c", "echo out; echo err >&2; exit 7"), 0)
	if err != nil || string(stdout) != "out\n" || string(stderr) != "err\n" || code != 7 {
		t.Errorf("ExecSync: %q %q %d %v", stdout, stderr, code, err)
	}

	// A background child keeps stdout open; the call still returns.
	stdout, _, code, err = c.ExecSync(ctx(t), "box", *process("sh", "-c", "sleep 1000 & echo started"), 0)
	if err != nil || string(stdout) != "started\n" || code != 0 {
		t.Errorf("ExecSync with a background child: %q %d %v", stdout, code, err)
	}

	_, _, _, err = c.ExecSync(ctx(t), "box", *process("sleep", "1000"), 200*time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ExecSync timeout: got %v, want DeadlineExceeded", err)
	}
	// The timed-out process is gone: only the init and the background sleep remain.
	if procs := cgroupProcs(t, "box"); len(procs) != 2 {
		t.Errorf("processes in the container after the timeout: %v", procs)
	}

	_, _, _, err = c.ExecSync(ctx(t), "nope", *process("true"), 0)
	if !errdefs.IsNotFound(err) {
		t.Errorf("ExecSync in an unknown container: got %v, want NotFound", err)
	}
}

// cgroupProcs lists the pids in a test container's memory cgroup.
func cgroupProcs(t *testing.T, id string) []string {
	raw, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", cgroupParent, id, "cgroup.procs"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(raw))
}

func TestReopenLogAndLongLines(t *testing.T) {
	e := newEnv(t)
	c := e.launch()
	logPath := e.run(c, "logger", []string{"sh", "-c", "echo one; exec sleep 1000"})
	waitFor(t, "the first line", func() bool {
		raw, _ := os.ReadFile(logPath)
		return bytes.Contains(raw, []byte("one"))
	})
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if err := c.ReopenLog(ctx(t), "logger"); err != nil {
		t.Fatal(err)
	}
	// Write to the init's stdout from an exec: 40000 bytes, then a newline.
	write := "head -c 40000 /dev/zero | tr '\\0' a > /proc/1/fd/1; echo two > /proc/1/fd/1"
	if _, _, code, err := c.ExecSync(ctx(t), "logger", *process("sh", "-c", write), 0); err != nil || code != 0 {
		t.Fatalf("ExecSync: %d %v", code, err)
	}
	waitFor(t, "the second line", func() bool {
		raw, _ := os.ReadFile(logPath)
		return bytes.Contains(raw, []byte("two"))
	})
	if old := readLog(t, logPath+".1"); len(old) != 1 || old[0] != "stdout F one" {
		t.Errorf("rotated log: %q", old)
	}
	var tags, content string
	for _, l := range readLog(t, logPath) {
		f := strings.SplitN(l, " ", 3)
		tags += f[1]
		content += f[2]
	}
	if tags != "PPF" || content != strings.Repeat("a", 40000)+"two" {
		t.Errorf("long line: tags %q, %d bytes of content", tags, len(content))
	}
}

func TestCreateErrors(t *testing.T) {
	e := newEnv(t)
	c := e.launch()
	bundle, _ := e.bundle("bad", []string{"true"})
	_, err := c.Create(ctx(t), shim.CreateRequest{ID: "bad", Bundle: bundle, LogPath: "/nonexistent/dir/x.log"})
	if !errdefs.IsInvalidArgument(err) {
		t.Errorf("missing log dir: got %v, want InvalidArgument", err)
	}
	// The runtime meets the bundle at Start (Create only registers):
	// its message comes back there, and the container stays CREATED,
	// removable, with nothing of the runtime's left.
	if _, err = c.Create(ctx(t), shim.CreateRequest{ID: "bad", Bundle: filepath.Join(e.dir, "no-bundle")}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	_, err = c.Start(ctx(t), "bad")
	if err == nil || !strings.Contains(err.Error(), "no-bundle: no such file") {
		t.Errorf("missing bundle: got %v, want the runtime's message", err)
	}
	if st, err := c.State(ctx(t), "bad"); err != nil || st.Status != shim.StatusCreated || st.Pid != 0 {
		t.Errorf("State after a failed start: %+v %v, want CREATED without a pid", st, err)
	}
	if err := c.Delete(ctx(t), "bad"); err != nil {
		t.Errorf("Delete after a failed start: %v", err)
	}
	e.run(c, "dup", []string{"sleep", "1000"})
	if _, err := c.Create(ctx(t), shim.CreateRequest{ID: "dup", Bundle: bundle}); !errdefs.IsAlreadyExists(err) {
		t.Errorf("duplicate id: got %v, want AlreadyExists", err)
	}
	if _, err := c.State(ctx(t), "bad"); !errdefs.IsNotFound(err) {
		t.Errorf("State of a deleted container: got %v, want NotFound", err)
	}
	if err := c.Delete(ctx(t), "never-was"); err != nil {
		t.Errorf("Delete of an unknown id: %v", err)
	}
	if err := c.Shutdown(ctx(t)); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Shutdown with a container: got %v, want FailedPrecondition", err)
	}
}

// TestDaemonRestart: the client goes away (as a kill -9'd daemon's would), a
// container exits meanwhile, a new client finds both containers right.
func TestDaemonRestart(t *testing.T) {
	e := newEnv(t)
	c := e.launch()
	e.run(c, "stays", []string{"sleep", "1000"})
	logPath := e.run(c, "exits", []string{"sh", "-c", "echo before; exec sleep 1000"})
	waitFor(t, "the log line", func() bool {
		raw, _ := os.ReadFile(logPath)
		return bytes.Contains(raw, []byte("before"))
	})
	c.Close()

	if err := e.rt.Kill(ctx(t), "exits", syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	c, err := shim.Connect(ctx(t), e.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The exit is reported to the new client.
	st := waitStopped(t, c, "exits")
	if st.ExitCode != 137 {
		t.Errorf("exit while disconnected: got %d, want 137", st.ExitCode)
	}
	sts, err := c.States(ctx(t))
	if err != nil || len(sts) != 2 {
		t.Fatalf("States: %+v %v", sts, err)
	}
	if sts[0].ID != "exits" || sts[0].Status != shim.StatusStopped || sts[0].ExitCode != 137 {
		t.Errorf("exited container: %+v", sts[0])
	}
	if sts[1].ID != "stays" || sts[1].Status != shim.StatusRunning {
		t.Errorf("running container: %+v", sts[1])
	}
	if got := readLog(t, logPath); len(got) != 1 || got[0] != "stdout F before" {
		t.Errorf("log: %q", got)
	}
	// Launch finds the running shim instead of starting another.
	c2, err := shim.Launch(ctx(t), e.options())
	if err != nil {
		t.Fatal(err)
	}
	c2.Close()
}

func TestShutdown(t *testing.T) {
	e := newEnv(t)
	c, err := shim.Launch(ctx(t), e.options())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e.run(c, "short", []string{"true"})
	waitStopped(t, c, "short")
	if err := c.Delete(ctx(t), "short"); err != nil {
		t.Fatal(err)
	}
	if err := c.Shutdown(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := shim.Connect(ctx(t), e.stateDir); !errdefs.IsNotFound(err) {
		t.Errorf("Connect after Shutdown: got %v, want NotFound", err)
	}
	if _, ok := <-c.Events(); ok {
		t.Error("events still open after Shutdown")
	}
}

// TestCreatedCostsNoProcess: Create only registers; the runtime has the
// container from Start on. A created container is stopped and deleted with
// no runtime call, as a killed init would be reported.
func TestCreatedCostsNoProcess(t *testing.T) {
	e := newEnv(t)
	c := e.launch()
	bundle, _ := e.bundle("idle", []string{"sleep", "1000"})
	if _, err := c.Create(ctx(t), shimCreate("idle", bundle, e.logDir)); err != nil {
		t.Fatal(err)
	}
	if st, err := c.State(ctx(t), "idle"); err != nil || st.Status != shim.StatusCreated || st.Pid != 0 {
		t.Fatalf("created: %+v %v", st, err)
	}
	if entries, _ := os.ReadDir(e.runtimeRoot); len(entries) != 0 {
		t.Errorf("the runtime has state for a created container: %v", entries)
	}
	if err := c.Kill(ctx(t), "idle", syscall.SIGKILL, true); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	if st, err := c.State(ctx(t), "idle"); err != nil || st.Status != shim.StatusStopped || st.ExitCode != 137 {
		t.Errorf("killed before start: %+v %v, want STOPPED 137", st, err)
	}
	if _, err := c.Start(ctx(t), "idle"); !errdefs.IsFailedPrecondition(err) {
		t.Errorf("Start of a stopped container: %v", err)
	}
	if err := c.Delete(ctx(t), "idle"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// Created and deleted at once, never stopped.
	if _, err := c.Create(ctx(t), shimCreate("brief", bundle, e.logDir)); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx(t), "brief"); err != nil {
		t.Fatalf("Delete of a created container: %v", err)
	}
	if err := c.Shutdown(ctx(t)); err != nil {
		t.Errorf("Shutdown with no container left: %v", err)
	}
}
