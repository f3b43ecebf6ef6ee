package framework

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Footprint is what a daemon holds at one moment; after load it must come
// back to a baseline.
type Footprint struct {
	Goroutines int // go_goroutines
	FDs        int // entries of /proc/PID/fd
	// RSS is VmRSS; RSSAnon is its anonymous part (heap, stacks), without
	// the binary's text and the metadata store's mmap, which are file pages
	// the kernel may keep or drop at will.
	RSS, RSSAnon int64
	// HeapInuse is go_memstats_heap_inuse_bytes: live objects and garbage
	// not yet collected, so it swings with the moment of the scrape.
	HeapInuse int64
	// HeapGoal is go_memstats_next_gc_bytes, the heap size at which the
	// next GC starts: the heap marked live by the last GC, times
	// (1+GOGC/100), plus stacks and globals. It moves only at a GC and
	// then with what is live, so it is the steadiest figure for a leak of
	// Go memory; the daemon cannot be told to run a GC from outside.
	HeapGoal int64
}

func (f Footprint) String() string {
	return fmt.Sprintf("goroutines %d, fds %d, RSS %s (anon %s), heap in use %s, heap goal %s",
		f.Goroutines, f.FDs, MiB(f.RSS), MiB(f.RSSAnon), MiB(f.HeapInuse), MiB(f.HeapGoal))
}

// MiB formats a byte count for a test log.
func MiB(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// Metrics reads a daemon's /metrics endpoint and its /proc entry.
type Metrics struct {
	d    *Daemon
	addr string
}

// StartDaemonWithMetrics starts a daemon serving /metrics on a free
// loopback port, the given Config appended after the [metrics] table.
func StartDaemonWithMetrics(t testing.TB, o Options) (*Daemon, *Metrics) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	o.Config = "[metrics]\naddress = \"" + addr + "\"\n" + o.Config
	d := StartDaemon(t, o)
	return d, &Metrics{d: d, addr: addr}
}

// Footprint scrapes the daemon's metrics and reads its fds and memory.
func (m *Metrics) Footprint(t testing.TB) Footprint {
	t.Helper()
	resp, err := http.Get("http://" + m.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var f Footprint
	for _, line := range strings.Split(string(body), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		val, _ := strconv.ParseFloat(v, 64)
		switch name {
		case "go_goroutines":
			f.Goroutines = int(val)
		case "go_memstats_heap_inuse_bytes":
			f.HeapInuse = int64(val)
		case "go_memstats_next_gc_bytes":
			f.HeapGoal = int64(val)
		}
	}
	pid := m.d.PID()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	f.FDs = len(fds)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	f.RSS, f.RSSAnon = statusKiB(status, "VmRSS:"), statusKiB(status, "RssAnon:")
	return f
}

// statusKiB reads a "Key:   N kB" line of /proc/PID/status, in bytes.
func statusKiB(status []byte, key string) int64 {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n << 10
		}
	}
	return 0
}

// Quiet waits (at most 10 s) until two samples 200 ms apart agree on
// goroutines and fds, so that a baseline is not taken while connections and
// timers of the last calls wind down, and returns the last sample.
func (m *Metrics) Quiet(t testing.TB) Footprint {
	t.Helper()
	prev := m.Footprint(t)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		now := m.Footprint(t)
		if now.Goroutines == prev.Goroutines && now.FDs == prev.FDs {
			return now
		}
		prev = now
	}
	return prev
}

// Settle waits (at most 10 s) until the daemon's goroutines and fds are back
// within slack of base, and fails the test if they do not come back. It
// returns the last sample.
func (m *Metrics) Settle(t testing.TB, base Footprint, slack int) Footprint {
	t.Helper()
	var now Footprint
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		now = m.Footprint(t)
		if now.Goroutines <= base.Goroutines+slack && now.FDs <= base.FDs+slack {
			return now
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("daemon did not come back to baseline (slack %d): %v; baseline %v", slack, now, base)
	return now
}

// LogTmpfs mounts a tmpfs of size bytes in a new directory under /tmp, for a
// pod's log directory. It is unmounted and removed after the daemon stopped
// (its shims hold the log files open until then), so it stays outside the
// leak check's directories.
func (d *Daemon) LogTmpfs(t testing.TB, size int64) string {
	t.Helper()
	dir, unmount := mountTmpfs(t, "na-logs-", size, 0o755)
	d.AddCleanup(unmount)
	return dir
}
