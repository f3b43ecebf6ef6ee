package framework

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/internal/leakcheck"
)

// BlobFault is how a FaultyMirror breaks a layer download.
type BlobFault int

const (
	// Healthy passes every request through.
	Healthy BlobFault = iota
	// StallBlob announces the whole blob, sends its first bytes, then
	// nothing until the client hangs up.
	StallBlob
	// DropBlob announces the whole blob, sends its first bytes, then
	// closes the TCP connection.
	DropBlob
	// TruncateBlob announces (Content-Length) and sends only the first
	// bytes of the blob, then ends the response cleanly.
	TruncateBlob
)

// FaultyMirror is a registry mirror in front of the test registry that
// breaks, on cue, every blob response larger than a cut-off: layers, not
// configs or manifests.
type FaultyMirror struct {
	URL string

	upstream *url.URL
	proxy    *httputil.ReverseProxy
	closing  chan struct{}

	mu     sync.Mutex
	fault  BlobFault
	after  int64
	broken atomic.Int64
}

// StartFaultyMirror serves a healthy mirror of the test registry until the
// test ends. Start it before the daemon, so that it outlives it.
func StartFaultyMirror(t testing.TB) *FaultyMirror {
	t.Helper()
	u, err := url.Parse(Registry(t).URL())
	if err != nil {
		t.Fatal(err)
	}
	m := &FaultyMirror{upstream: u, proxy: httputil.NewSingleHostReverseProxy(u), closing: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(m.serve))
	m.URL = srv.URL
	t.Cleanup(func() {
		close(m.closing) // ends stalled responses
		srv.Close()
	})
	return m
}

// Set makes the mirror break blobs larger than after bytes with f, from the
// next request on.
func (m *FaultyMirror) Set(f BlobFault, after int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fault, m.after = f, after
}

// Broken is how many responses the mirror broke so far.
func (m *FaultyMirror) Broken() int64 { return m.broken.Load() }

// Args are the daemon flags that send every upstream host to this mirror.
func (m *FaultyMirror) Args() []string {
	var args []string
	for _, h := range UpstreamHosts {
		args = append(args, "--registry-mirror", h+"="+m.URL)
	}
	return args
}

func (m *FaultyMirror) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	fault, after := m.fault, m.after
	m.mu.Unlock()
	if fault == Healthy || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
		m.proxy.ServeHTTP(w, r)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, m.upstream.JoinPath(r.URL.Path).String(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ContentLength <= after {
		copyResponse(w, resp, -1, resp.ContentLength)
		return
	}
	m.broken.Add(1)
	size := resp.ContentLength
	if fault == TruncateBlob {
		size = after
	}
	copyResponse(w, resp, after, size)
	switch fault {
	case StallBlob:
		select {
		case <-r.Context().Done():
		case <-m.closing:
		}
	case DropBlob:
		// The server closes the connection without finishing the response.
		panic(http.ErrAbortHandler)
	}
}

// copyResponse sends resp's status and headers, announcing a body of
// announced bytes (-1: unknown), then the first n bytes of resp's body (-1:
// all of it).
func copyResponse(w http.ResponseWriter, resp *http.Response, n, announced int64) {
	for _, k := range []string{"Content-Type", "Docker-Content-Digest"} {
		if v := resp.Header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	if announced >= 0 {
		w.Header().Set("Content-Length", strconv.FormatInt(announced, 10))
	}
	w.WriteHeader(resp.StatusCode)
	if n < 0 {
		_, _ = io.Copy(w, resp.Body)
	} else {
		_, _ = io.CopyN(w, resp.Body, n)
	}
	_ = http.NewResponseController(w).Flush()
}

// StartDaemonOnTmpfs starts a daemon whose root (images, snapshots,
// container layers, meta.db) is a tmpfs of size bytes in a directory of its
// own, unmounted when the test ends, after the daemon stopped.
func StartDaemonOnTmpfs(t testing.TB, o Options, size int64) *Daemon {
	t.Helper()
	RequireRoot(t)
	dir, unmount := mountTmpfs(t, "na-tmpfs-", size, 0o711)
	// Registered before the daemon's own cleanup, so it runs after it.
	t.Cleanup(unmount)
	root := filepath.Join(dir, "root")
	o.Args = append(append([]string{}, o.Args...), "--root", root)
	d := NewDaemon(t, o)
	d.Root = root
	d.ExtendScope(func(s leakcheck.Scope) leakcheck.Scope {
		s.Dirs = append(s.Dirs, root)
		return s
	})
	d.Start(t)
	return d
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory under /tmp
// named with prefix; unmount unmounts (or detaches) and removes it.
func mountTmpfs(t testing.TB, prefix string, size int64, mode os.FileMode) (dir string, unmount func()) {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=%#o", size, mode)); err != nil {
		os.Remove(dir)
		t.Fatalf("mount tmpfs: %v", err)
	}
	return dir, func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v (detaching it)", dir, err)
			_ = unix.Unmount(dir, unix.MNT_DETACH)
		}
		os.Remove(dir)
	}
}

// FreeBytes is the space left to unprivileged writers on path's file system.
func FreeBytes(t testing.TB, path string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// FaultyRuntime is an OCI runtime binary for a test handler: a shell wrapper
// around the real runc that fails or hangs on cue.
type FaultyRuntime struct {
	// Path is the wrapper; name it in [runtime.handlers.NAME] path.
	Path string
}

// faultyRuntimeScript runs the real runtime (%[1]q), except that while the
// file $0.fail-CMD exists, CMD (create or start) fails with a message
// written where runc writes its errors (the --log file, else stderr); and
// while $0.hang-CMD exists, CMD runs, then its exit waits for the file to go.
const faultyRuntimeScript = `#!/bin/sh
cmd= log= prev=
for a in "$@"; do
	[ "$prev" = --log ] && log=$a
	case "$a" in create|start) [ -z "$cmd" ] && cmd=$a ;; esac
	prev=$a
done
if [ -n "$cmd" ] && [ -e "$0.fail-$cmd" ]; then
	msg='{"level":"error","msg":"nodeagent-test: injected '$cmd' failure"}'
	if [ -n "$log" ]; then echo "$msg" >>"$log"; else echo "$msg" >&2; fi
	exit 1
fi
if [ -n "$cmd" ] && [ -e "$0.hang-$cmd" ]; then
	%[1]q "$@"
	rc=$?
	while [ -e "$0.hang-$cmd" ]; do sleep 0.05; done
	exit $rc
fi
exec %[1]q "$@"
`

// InjectedFailure is the message a failing FaultyRuntime command reports.
func InjectedFailure(cmd string) string { return "nodeagent-test: injected " + cmd + " failure" }

// NewFaultyRuntime writes a wrapper around the runc found in PATH. It
// behaves as runc until told otherwise, so it passes the daemon's probe.
func NewFaultyRuntime(t testing.TB) *FaultyRuntime {
	t.Helper()
	real, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc not found: %v", err)
	}
	r := &FaultyRuntime{Path: filepath.Join(t.TempDir(), "runc")}
	if err := os.WriteFile(r.Path, fmt.Appendf(nil, faultyRuntimeScript, real), 0o755); err != nil {
		t.Fatal(err)
	}
	return r
}

// Fail makes cmd ("create" or "start") fail from now on (on=false: work).
func (r *FaultyRuntime) Fail(t testing.TB, cmd string, on bool) { r.mark(t, "fail-"+cmd, on) }

// Hang makes cmd finish its work but not exit until Hang(cmd, false).
func (r *FaultyRuntime) Hang(t testing.TB, cmd string, on bool) { r.mark(t, "hang-"+cmd, on) }

func (r *FaultyRuntime) mark(t testing.TB, what string, on bool) {
	t.Helper()
	p := r.Path + "." + what
	if on {
		WriteFile(t, p, "")
		// A test that fails before turning the fault off must not leave
		// the daemon's cleanup to a failing or hanging runtime.
		t.Cleanup(func() { os.Remove(p) })
		return
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

// HandlerConfig is the config snippet that adds handler name running r.
func (r *FaultyRuntime) HandlerConfig(name string) string {
	return fmt.Sprintf("[runtime.handlers.%s]\npath = %q\n", name, r.Path)
}
