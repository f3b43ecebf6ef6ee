package stats

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeTree makes a small writable layer: a file with a hard link, a sparse
// file, a symlink, a subdirectory.
func writeTree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data"), make([]byte, 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(dir, "data"), filepath.Join(dir, "sub", "link")); err != nil {
		t.Fatal(err)
	}
	sparse, err := os.Create(filepath.Join(dir, "sub", "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sparse.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	sparse.Close()
	if err := os.Symlink("data", filepath.Join(dir, "sym")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// du is the oracle: GNU du counts allocated blocks, hard links once, and
// stays on one filesystem with -x, as diskUsage does.
func du(t *testing.T, dir string, args ...string) uint64 {
	t.Helper()
	out, err := exec.Command("du", append(append([]string{"-sx"}, args...), dir)...).Output()
	if err != nil {
		t.Skipf("du: %v", err)
	}
	v, err := strconv.ParseUint(strings.Fields(string(out))[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDiskUsage(t *testing.T) {
	dir := writeTree(t)
	bytes, inodes, err := diskUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := du(t, dir, "-B1"); bytes != want {
		t.Errorf("bytes = %d, du says %d", bytes, want)
	}
	if bytes >= 1<<30 {
		t.Errorf("bytes = %d: the sparse file counted at its size", bytes)
	}
	// root, data (+link counted once), sub, sparse, sym
	if want := du(t, dir, "--inodes"); inodes != want || inodes != 5 {
		t.Errorf("inodes = %d, du says %d, want 5", inodes, want)
	}

	if _, _, err := diskUsage(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing dir: %v, want ErrNotExist", err)
	}
}

func TestSamplerDirs(t *testing.T) {
	dir := writeTree(t)
	s := NewSampler(NewReaderAt("testdata/v2", Unified), 0)
	s.TrackDir("a", dir)
	s.TrackDir("gone", filepath.Join(dir, "missing"))
	if _, _, ok := s.DirUsage("a"); ok {
		t.Fatal("usage before any walk")
	}
	s.walkDirs(true)
	b, n, ok := s.DirUsage("a")
	if !ok || n != 5 || b == 0 {
		t.Errorf("DirUsage = %d, %d, %v", b, n, ok)
	}
	if _, _, ok := s.DirUsage("gone"); ok {
		t.Error("usage of a missing dir")
	}

	// Served from memory: a new file shows only after the next walk.
	if err := os.WriteFile(filepath.Join(dir, "more"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, n2, _ := s.DirUsage("a"); n2 != n {
		t.Errorf("inodes moved without a walk: %d -> %d", n, n2)
	}
	s.walkDirs(false)
	if _, n2, _ := s.DirUsage("a"); n2 != n+1 {
		t.Errorf("inodes after a walk = %d, want %d", n2, n+1)
	}

	s.Untrack("a")
	if _, _, ok := s.DirUsage("a"); ok {
		t.Error("usage after Untrack")
	}
}

// Run reads what is tracked at once, without waiting for the interval, and
// returns when its context ends. The wait is a bound on a hang, not a
// measurement.
func TestSamplerRun(t *testing.T) {
	s := NewSampler(NewReaderAt("testdata/v2", Unified), time.Hour, WithDirInterval(time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Run(ctx)
		close(done)
	}()
	s.Track("c", "/kubepods/pod1/ctr1")
	s.TrackDir("c", writeTree(t))
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, sampled := s.Latest("c")
		_, _, walked := s.DirUsage("c")
		if sampled && walked {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tracked cgroup sampled %v, dir walked %v: Run did not pick them up", sampled, walked)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got, _ := s.Latest("c"); got.CPUUsageNanos != 500000 {
		t.Errorf("Latest = %+v", got)
	}
	// One sample only (the interval is an hour): no rate yet.
	if _, ok := s.NanoCores("c"); ok {
		t.Error("a rate from a single sample")
	}
	cancel()
	<-done
}

func TestSamplerRetrack(t *testing.T) {
	s := NewSampler(NewReaderAt("testdata/v2", Unified), 0)
	s.Track("c", "/kubepods/pod1/ctr1")
	s.sampleCgroups(false)
	s.sampleCgroups(false)
	if _, ok := s.NanoCores("c"); !ok {
		t.Fatal("no rate after two samples")
	}
	// Same path: nothing lost. Another path: starts over.
	s.Track("c", "/kubepods/pod1/ctr1")
	if _, ok := s.NanoCores("c"); !ok {
		t.Error("re-tracking the same path dropped the rate")
	}
	s.Track("c", "kubepods-besteffort-pod1.slice:nodeagent:abc")
	if _, ok := s.NanoCores("c"); ok {
		t.Error("a rate carried over to another cgroup")
	}
	s.Track("missing", "/kubepods/pod1/nope")
	s.sampleCgroups(true)
	if _, ok := s.Latest("missing"); ok {
		t.Error("a sample of a missing cgroup")
	}
	if got, ok := s.Latest("c"); !ok || got.PIDs != 3 {
		t.Errorf("Latest after re-track = %+v, %v", got, ok)
	}
}

// ReadNow answers a request that finds no sample and keeps what it read, so
// the next request is answered from memory.
func TestSamplerReadNow(t *testing.T) {
	s := NewSampler(NewReaderAt("testdata/v2", Unified), time.Hour)
	if _, ok := s.ReadNow("untracked"); ok {
		t.Error("ReadNow of an untracked id")
	}
	s.Track("c", "/kubepods/pod1/ctr1") // Run is not running: no pass reads it
	if _, ok := s.Latest("c"); ok {
		t.Fatal("a sample before any read")
	}
	got, ok := s.ReadNow("c")
	if !ok || got.CPUUsageNanos != 500000 {
		t.Fatalf("ReadNow = %+v, %v", got, ok)
	}
	if kept, ok := s.Latest("c"); !ok || kept.Timestamp != got.Timestamp {
		t.Errorf("Latest after ReadNow = %+v, %v", kept, ok)
	}
	s.Track("missing", "/kubepods/pod1/nope")
	if _, ok := s.ReadNow("missing"); ok {
		t.Error("ReadNow of a missing cgroup")
	}
}
