package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// counterScript writes numbered lines to stdout as fast as busybox sh can;
// every 1000 lines it records the count in /tmp/count, so that a test can
// see it progress without its log.
const counterScript = `i=0; while :; do echo line-$i; i=$((i+1)); [ $((i % 1000)) -ne 0 ] || echo $i >/tmp/count; done`

// counterLines parses a CRI log file written by counterScript and returns
// the numbers of its lines in file order. Every line must be a whole CRI
// line: "<RFC3339Nano> stdout F line-N".
func counterLines(t *testing.T, path string) []int {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		t.Errorf("%s ends in a torn line: %q", path, raw[max(0, len(raw)-60):])
	}
	var nums []int
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		m := criLogLine.FindStringSubmatch(sc.Text())
		if m == nil || m[1] != "stdout" || m[2] != "F" {
			t.Fatalf("%s: not a full CRI stdout line: %q", path, sc.Text())
		}
		if _, err := time.Parse(time.RFC3339Nano, strings.Fields(sc.Text())[0]); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		n, err := strconv.Atoi(strings.TrimPrefix(m[3], "line-"))
		if err != nil || !strings.HasPrefix(m[3], "line-") {
			t.Fatalf("%s: not a counter line: %q", path, sc.Text())
		}
		nums = append(nums, n)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return nums
}

// rotatedLog is a file the rotator renamed away and its size when
// ReopenContainerLog returned: from then on nothing may write to it.
type rotatedLog struct {
	path     string
	atReopen int64
}

// rotator does what kubelet's container log manager does
// (pkg/kubelet/logs/container_log_manager.go): when the log exceeds maxSize
// it renames it to <path>.<n> and calls ReopenContainerLog, and it keeps
// maxFiles files in all. Before removing the oldest it counts its lines, so
// that no line goes uncounted.
type rotator struct {
	d         *framework.Daemon
	id, path  string
	maxSize   int64
	maxFiles  int
	rotated   []rotatedLog
	rotations int
	largest   int64 // largest size found by a check
	maxWindow int64 // most written between a check and its reopen
	seen      map[int]int
}

// check rotates the log if it is over maxSize.
func (r *rotator) check(t *testing.T) {
	t.Helper()
	fi, err := os.Stat(r.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() <= r.maxSize {
		return
	}
	r.rotations++
	to := fmt.Sprintf("%s.%d", r.path, r.rotations)
	if err := os.Rename(r.path, to); err != nil {
		t.Fatal(err)
	}
	if _, err := r.d.Runtime.ReopenContainerLog(framework.Ctx(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: r.id}); err != nil {
		t.Fatalf("ReopenContainerLog: %v", err)
	}
	old, err := os.Stat(to)
	if err != nil {
		t.Fatal(err)
	}
	// The shim created the new file before answering.
	if cur, err := os.Stat(r.path); err != nil || os.SameFile(cur, old) {
		t.Fatalf("after ReopenContainerLog: %s is %v (err %v), want a new file", r.path, cur, err)
	}
	r.rotated = append(r.rotated, rotatedLog{path: to, atReopen: old.Size()})
	r.largest = max(r.largest, fi.Size())
	r.maxWindow = max(r.maxWindow, old.Size()-fi.Size())
	for len(r.rotated) > r.maxFiles-1 {
		r.collect(t, r.rotated[0])
		if err := os.Remove(r.rotated[0].path); err != nil {
			t.Fatal(err)
		}
		r.rotated = r.rotated[1:]
	}
}

// collect counts the lines of a rotated file, which must not have grown
// since ReopenContainerLog returned.
func (r *rotator) collect(t *testing.T, f rotatedLog) {
	t.Helper()
	fi, err := os.Stat(f.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != f.atReopen {
		t.Errorf("%s: %d bytes when ReopenContainerLog returned, now %d: written to after the reopen",
			filepath.Base(f.path), f.atReopen, fi.Size())
	}
	for _, n := range counterLines(t, f.path) {
		r.seen[n]++
	}
}

// TestLogRotation: a container writes numbered lines at full speed while
// kubelet-style rotation renames its log and calls ReopenContainerLog,
// again and again. Every line 0..N is in the rotated files or the current
// one exactly once, each a whole CRI line; after each ReopenContainerLog the
// rotated file never grows again (the writer moved to the new file), so
// every file stays within maxSize plus what was written between the size
// check and the reopen, as with kubelet.
func TestLogRotation(t *testing.T) {
	const maxSize, maxFiles, rotations = 256 << 10, 3, 30
	e := newPodEnv(t)
	id := e.create(t, "counter", "sh", "-c", counterScript)
	e.start(t, id)
	r := &rotator{d: e.d, id: id, path: e.status(t, id).LogPath, maxSize: maxSize, maxFiles: maxFiles, seen: map[int]int{}}
	begin := time.Now()
	for deadline := begin.Add(2 * time.Minute); r.rotations < rotations; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d rotations in 2 minutes, want %d: is the container writing?", r.rotations, rotations)
		}
		r.check(t)
	}
	elapsed := time.Since(begin)
	if _, err := e.d.Runtime.StopContainer(framework.Ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	e.waitExited(t, id) // the shim drained its output into the log first
	for _, f := range r.rotated {
		r.collect(t, f)
	}
	for _, n := range counterLines(t, r.path) {
		r.seen[n]++
	}
	last := -1
	for n := range r.seen {
		last = max(last, n)
	}
	var missing, repeated []int
	for n := 0; n <= last; n++ {
		switch r.seen[n] {
		case 0:
			missing = append(missing, n)
		case 1:
		default:
			repeated = append(repeated, n)
		}
	}
	if len(missing) > 0 || len(repeated) > 0 {
		t.Errorf("lines 0..%d: %d missing (first %v), %d repeated (first %v)",
			last, len(missing), missing[:min(len(missing), 10)], len(repeated), repeated[:min(len(repeated), 10)])
	}
	t.Logf("%d lines in %d rotations over %v (%.0f lines/s); max size %s; largest file at a check %s "+
		"(checks every 5 ms, late when the writer busies both cores); at most %d KiB written between a check and its reopen",
		last+1, r.rotations, elapsed.Round(time.Millisecond), float64(last+1)/elapsed.Seconds(),
		framework.MiB(maxSize), framework.MiB(r.largest), r.maxWindow>>10)
	removeContainer(t, e.d, id)
	stopRemovePod(t, e.d, e.podID)
}

// TestLogDiskFull: a chatty container's log directory is a small tmpfs that
// its output fills. The shim drops what does not fit, as containerd's CRI
// logger does, rather than stop draining the container's stdout: the
// container keeps running and counting, the shim keeps serving ExecSync and
// ContainerStatus, the full file holds only whole CRI lines in order (a write
// cut short by the full disk is truncated back). Once space is freed (the
// file deleted, ReopenContainerLog) new lines are written again, the shim
// holds no fd of the deleted file, and the daemon is back to its baseline.
func TestLogDiskFull(t *testing.T) {
	d, m := newLoadEnv(t)
	base := m.Quiet(t)
	logs := d.LogTmpfs(t, 512<<10)
	e := &podEnv{d: d, pod: d.PodConfig(t, "chatty")}
	e.pod.LogDirectory = filepath.Join(logs, "chatty")
	e.podID = runPod(t, d, e.pod)
	id := e.create(t, "chatty", "sh", "-c", counterScript)
	e.start(t, id)
	path := e.status(t, id).LogPath
	shim := shimPID(t, e.podID)
	// Full: less room than one batch of the shim's (64 KiB), which it
	// truncates back when it does not fit.
	waitFor(t, func() bool { return framework.FreeBytes(t, logs) < 80<<10 })

	// The count, or -1 when the read met the file truncated by the next
	// write of it.
	count := func() int {
		n, err := strconv.Atoi(strings.TrimSpace(string(e.exec(t, id, "cat", "/tmp/count").Stdout)))
		if err != nil {
			return -1
		}
		return n
	}
	var c1, c2 int
	waitFor(t, func() bool { c1 = count(); return c1 >= 0 })
	waitFor(t, func() bool { c2 = count(); return c2 > c1+10000 })
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Fatalf("container with a full log disk: %v (exit %d, %s)", st.State, st.ExitCode, st.Reason)
	}
	if pid := shimPID(t, e.podID); pid != shim {
		t.Fatalf("shim %d replaced by %d", shim, pid)
	}
	full := counterLines(t, path)
	if len(full) == 0 || full[0] != 0 {
		t.Fatalf("full log: %d lines, first %v", len(full), full[:min(len(full), 1)])
	}
	for i := 1; i < len(full); i++ {
		if full[i] <= full[i-1] {
			t.Fatalf("full log: line %d is line-%d after line-%d", i, full[i], full[i-1])
		}
	}
	t.Logf("disk full after %d lines (last line-%d); the container counted on from %d to %d", len(full), full[len(full)-1], c1, c2)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Runtime.ReopenContainerLog(framework.Ctx(t), &runtimeapi.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Fatalf("ReopenContainerLog after freeing space: %v", err)
	}
	var fresh []int
	waitFor(t, func() bool { fresh = counterLines(t, path); return len(fresh) > 0 && fresh[len(fresh)-1] > c2 })
	if fresh[0] <= full[len(full)-1] {
		t.Errorf("first line after reopen: line-%d, want one after the full log's last, line-%d", fresh[0], full[len(full)-1])
	}
	for i := 1; i < len(fresh); i++ {
		if fresh[i] <= fresh[i-1] {
			t.Fatalf("new log: line %d is line-%d after line-%d", i, fresh[i], fresh[i-1])
		}
	}
	fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", shim))
	for _, fd := range fds {
		if to, _ := os.Readlink(fd); strings.HasPrefix(to, logs) && strings.HasSuffix(to, "(deleted)") {
			t.Errorf("shim fd %s still holds the deleted log %s", filepath.Base(fd), to)
		}
	}
	if _, err := d.Runtime.StopContainer(framework.Ctx(t), &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	e.waitExited(t, id)
	removeContainer(t, d, id)
	stopRemovePod(t, d, e.podID)
	m.Settle(t, base, footprintSlack)
}
