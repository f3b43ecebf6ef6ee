package stats

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/nodeagent/nodeagent/internal/leakcheck"
)

// hostCgroup is a cgroup this test made in every v1 hierarchy a Reader reads
// (and in the unified hierarchy on a hybrid host), with one shell in it that
// burns CPU each time it is poked.
type hostCgroup struct {
	path  string // as an OCI cgroupsPath
	dirs  []string
	cmd   *exec.Cmd
	stdin io.Writer
	out   *bufio.Reader
}

// newHostCgroup needs root on a v1 or hybrid host; everything it makes is
// removed when the test ends, and leakcheck proves it.
func newHostCgroup(t testing.TB, r *Reader) *hostCgroup {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if r.Mode() == Unified {
		t.Skip("host is cgroup v2: the v1 path is covered by fixtures only there")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	parent := "nodeagent-stats-test-" + hex.EncodeToString(b)
	leakcheck.Check(t, leakcheck.Scope{CgroupParents: []string{parent}, ProcessMarkers: []string{parent}})

	c := &hostCgroup{path: "/" + parent + "/ctr"}
	roots := make([]string, 0, len(r.v1)+1)
	for _, root := range r.v1 {
		roots = append(roots, root)
	}
	if r.v2 != "" {
		roots = append(roots, r.v2)
	}
	for _, root := range roots {
		dir := filepath.Join(root, c.path)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		c.dirs = append(c.dirs, dir)
		t.Cleanup(func() {
			for _, d := range []string{dir, filepath.Dir(dir)} {
				if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
					t.Errorf("remove cgroup: %v", err)
				}
			}
		})
	}

	// The shell joins the cgroups itself, then execs the worker, so all of
	// the worker's memory is charged here (v1 does not move charges of a
	// moved process). It first holds 8MB in a shell variable: memcg folds
	// per-CPU stat deltas into memory.stat only past a threshold (or every
	// 2s), so a tiny process would show no rss or faults yet. Then each line
	// on stdin: count to 200000 in shell builtins (no forks: the cgroup
	// holds one task), then say so.
	worker := ": " + parent + "; s=$(head -c 8000000 /dev/zero | tr '\\0' x); while read x; do i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo burned; done"
	join := ": " + parent + `; for d in "$@"; do echo $$ > "$d/cgroup.procs" || exit 1; done; exec sh -c "$STATS_WORKER"`
	c.cmd = exec.Command("sh", append([]string{"-c", join, "sh"}, c.dirs...)...)
	c.cmd.Env = append(os.Environ(), "STATS_WORKER="+worker)
	c.cmd.Stderr = os.Stderr
	stdin, err := c.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c.stdin, c.out = stdin, bufio.NewReader(stdout)
	// Registered after the cgroup removals, so it runs before them.
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
	})
	return c
}

// burn makes the shell use some CPU and waits until it is idle again.
func (c *hostCgroup) burn(t testing.TB) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	line, err := c.out.ReadString('\n')
	if err != nil || line != "burned\n" {
		t.Fatalf("shell said %q, %v", line, err)
	}
}

func (c *hostCgroup) dir(ctrl string) string {
	for _, d := range c.dirs {
		if strings.Contains(d, "/"+ctrl+"/") {
			return d
		}
	}
	return ""
}

func readUint(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func hostReader(t testing.TB) *Reader {
	t.Helper()
	r, err := NewReader()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReadHostV1(t *testing.T) {
	r := hostReader(t)
	c := newHostCgroup(t, r)
	const limit = 256 << 20
	if err := os.WriteFile(filepath.Join(c.dir("memory"), "memory.limit_in_bytes"), []byte(fmt.Sprint(limit)), 0); err != nil {
		t.Fatal(err)
	}
	c.burn(t)

	// The shell is going back to read (it may still be on its way there):
	// the sample must lie between two readings of the file.
	usage := filepath.Join(c.dir("cpuacct"), "cpuacct.usage")
	before := readUint(t, usage)
	s, err := r.Read(c.path)
	if err != nil {
		t.Fatal(err)
	}
	if after := readUint(t, usage); s.CPUUsageNanos < before || s.CPUUsageNanos > after || before == 0 {
		t.Errorf("CPUUsageNanos = %d, cpuacct.usage went %d -> %d", s.CPUUsageNanos, before, after)
	}
	if s.CPUUserNanos+s.CPUSystemNanos == 0 {
		t.Errorf("no user or system CPU time: %+v", s)
	}
	if s.PIDs != 1 {
		t.Errorf("PIDs = %d, want 1 (the shell)", s.PIDs)
	}
	if s.MemoryUsage < 8e6 || s.MemoryWorkingSet > s.MemoryUsage || s.MemoryRSS < 8e6 {
		t.Errorf("memory usage %d, working set %d, rss %d", s.MemoryUsage, s.MemoryWorkingSet, s.MemoryRSS)
	}
	if s.MemoryLimit != limit || s.MemoryAvailable != limit-s.MemoryWorkingSet {
		t.Errorf("limit %d available %d working set %d", s.MemoryLimit, s.MemoryAvailable, s.MemoryWorkingSet)
	}
	if s.PageFaults == 0 {
		t.Error("no page faults counted")
	}
	if r.Mode() == Hybrid {
		// psi=1 on this kernel: every cgroup of the unified hierarchy has
		// pressure files, even without controllers.
		if _, err := os.Stat(filepath.Join(c.dir("unified"), "cpu.pressure")); err == nil {
			if s.PSI == nil || s.PSI.CPU == nil || s.PSI.Memory == nil || s.PSI.IO == nil {
				t.Errorf("PSI = %+v, want cpu, memory and io pressure", s.PSI)
			}
		}
	}

	// Gone: the process leaves and the cgroup is removed.
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	for _, d := range c.dirs {
		if err := os.Remove(d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.Read(c.path); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Read of a removed cgroup = %v, want NotFound", err)
	}
}

func TestSamplerHostV1(t *testing.T) {
	r := hostReader(t)
	c := newHostCgroup(t, r)
	s := NewSampler(r, 0)
	s.Track("ctr", c.path)
	if _, ok := s.NanoCores("ctr"); ok {
		t.Fatal("a rate before any sample")
	}
	s.sampleCgroups(false)
	first, ok := s.Latest("ctr")
	if !ok {
		t.Fatal("no sample after a pass")
	}
	if _, ok := s.NanoCores("ctr"); ok {
		t.Fatal("a rate from one sample")
	}
	c.burn(t)
	s.sampleCgroups(false)
	second, _ := s.Latest("ctr")
	rate, ok := s.NanoCores("ctr")
	if !ok || rate == 0 || second.CPUUsageNanos <= first.CPUUsageNanos {
		t.Fatalf("after burning: rate %d, %v; cpu %d -> %d", rate, ok, first.CPUUsageNanos, second.CPUUsageNanos)
	}
	want, _ := cpuRate(first, second)
	if rate != want {
		t.Errorf("NanoCores = %d, want %d from the two samples", rate, want)
	}

	// The container goes away: no stale rate is served.
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	_ = c.cmd.Wait()
	for _, d := range c.dirs {
		_ = os.Remove(d)
	}
	s.sampleCgroups(false)
	if _, ok := s.NanoCores("ctr"); ok {
		t.Error("a rate for a removed cgroup")
	}
	if _, ok := s.Latest("ctr"); ok {
		t.Error("a sample for a removed cgroup")
	}
	s.Untrack("ctr")
}

// BenchmarkReadHostV1 is the cost of one live Read, what ListContainerStats
// pays per container when it does not answer from Sampler.Latest.
func BenchmarkReadHostV1(b *testing.B) {
	r := hostReader(b)
	c := newHostCgroup(b, r)
	for b.Loop() {
		if _, err := r.Read(c.path); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSamplerLatest(b *testing.B) {
	s := NewSampler(NewReaderAt("testdata/v2", Unified), 0)
	for i := range 100 {
		s.Track(strconv.Itoa(i), "/kubepods/pod1/ctr1")
	}
	s.sampleCgroups(false)
	for b.Loop() {
		for i := range 100 {
			if _, ok := s.Latest(strconv.Itoa(i)); !ok {
				b.Fatal("no sample")
			}
		}
	}
}
