package e2e

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// ptySession is crictl-lite running on the slave side of a real pty, as
// in a user's terminal; the test types on the master side and reads what
// the terminal shows.
type ptySession struct {
	t    *testing.T
	cmd  *exec.Cmd
	pty  console.Console
	mu   sync.Mutex
	seen bytes.Buffer
	read chan struct{} // closed when the master side reads EOF/EIO
}

func (e *podEnv) cliPty(t *testing.T, args ...string) *ptySession {
	t.Helper()
	return cliPty(t, e.d.Socket, args...)
}

func cliPty(t *testing.T, socket string, args ...string) *ptySession {
	t.Helper()
	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatalf("open pty: %v", err)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatalf("open %s: %v", slavePath, err)
	}
	if err := master.Resize(console.WinSize{Width: 120, Height: 40}); err != nil {
		t.Logf("resize pty: %v", err)
	}
	cmd := exec.Command(crictlLite(t), append([]string{"-r", "unix://" + socket}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.Env = append(os.Environ(), "TERM=xterm")
	// Its own session with the pty as controlling terminal, as a login shell.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		slave.Close()
		master.Close()
		t.Fatalf("start crictl-lite %v: %v", args, err)
	}
	slave.Close() // the child holds it now
	s := &ptySession{t: t, cmd: cmd, pty: master, read: make(chan struct{})}
	go func() {
		defer close(s.read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			s.mu.Lock()
			s.seen.Write(buf[:n])
			s.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
		master.Close()
	})
	return s
}

func (s *ptySession) output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen.String()
}

// waitFor waits until the terminal showed want.
func (s *ptySession) waitFor(want string, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(s.output(), want) {
		if time.Now().After(deadline) {
			s.t.Fatalf("terminal did not show %q in %v; it shows:\n%q", want, timeout, s.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *ptySession) typeIn(text string) {
	s.t.Helper()
	if _, err := io.WriteString(s.pty, text); err != nil {
		s.t.Fatalf("type %q: %v", text, err)
	}
}

// wait waits for crictl-lite to exit and returns its exit code.
func (s *ptySession) wait(timeout time.Duration) int {
	s.t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			s.t.Fatalf("crictl-lite: %v", err)
		}
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		<-done
		s.t.Fatalf("crictl-lite did not exit in %v; the terminal shows:\n%q", timeout, s.output())
	}
	// Drain what it wrote before exiting.
	select {
	case <-s.read:
	case <-time.After(2 * time.Second):
	}
	return s.cmd.ProcessState.ExitCode()
}

// layerLine is one layer's progress line: short digest, state, bar, bytes.
var layerLine = regexp.MustCompile(`\x1b\[2K  ([0-9a-f]{13})  (waiting|downloading|done|exists|failed) +\[[= ]+\] +\S+ / `)

// TestCrictlLiteTerminal drives crictl-lite as a user at a terminal: an
// interactive shell through `exec -it`, and `pull` with its progress bars.
func TestCrictlLiteTerminal(t *testing.T) {
	e := newPodEnv(t)
	sleeper := e.create(t, "sleeper", "sleep", "3600")
	e.start(t, sleeper)

	sh := e.cliPty(t, "exec", "-it", "sleeper", "sh")
	sh.waitFor("# ", 30*time.Second) // busybox sh's prompt as root
	sh.typeIn("echo hi-$((1+1))\r")
	sh.waitFor("hi-2", 10*time.Second)
	sh.typeIn("exit 3\r")
	if code := sh.wait(30 * time.Second); code != 3 {
		t.Errorf("exec -it sh, exit 3: crictl-lite exited %d; the terminal shows:\n%q", code, sh.output())
	}
	// The shell is gone from the container: only sleep (and ps) remain.
	resp, err := e.d.Runtime.ExecSync(framework.Ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: sleeper, Cmd: []string{"ps", "-o", "pid,comm"}, Timeout: 10})
	if err != nil || resp.ExitCode != 0 {
		t.Fatalf("ExecSync ps: %v, %+v", err, resp)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(resp.Stdout)), "\n")[1:] {
		if f := strings.Fields(line); len(f) < 2 || (f[1] != "pause" && f[1] != "sleep" && f[1] != "ps") {
			t.Errorf("process left in the container after exec -it exited:\n%s", resp.Stdout)
			break
		}
	}

	if _, err := e.d.Runtime.StopContainer(framework.Ctx(t), &runtimeapi.StopContainerRequest{ContainerId: sleeper, Timeout: 1}); err != nil {
		t.Fatal(err)
	}

	// pull at a terminal draws a line per layer from the daemon's progress.
	// The local registry is too fast for a frame to catch a pull: this
	// daemon's docker.io mirror serves blobs at 16 MiB/s, so the pull of
	// 40 MiB takes seconds.
	slow := throttledMirror(t, framework.Registry(t).URL(), 16<<20)
	pe := &podEnv{d: framework.StartDaemon(t, framework.Options{Args: []string{"--registry-mirror", "docker.io=" + slow}})}
	const image = "docker.io/nodeagent-bench/layers5:gzip"
	pull := pe.cliPty(t, "pull", image)
	if code := pull.wait(5 * time.Minute); code != 0 {
		t.Fatalf("pull %s: exit %d; the terminal shows:\n%q", image, code, pull.output())
	}
	out := pull.output()
	t.Logf("pull at a terminal:\n%q", out)
	mustContain(t, "pull at a terminal", out, "\x1b[2K", "Image is up to date for ")
	// Each frame redraws the last: a layer is one line of a frame.
	frames := regexp.MustCompile(`\x1b\[\d+A`).Split(out, -1)
	drewLayers := false
	for _, frame := range frames {
		layers := map[string]int{}
		for _, m := range layerLine.FindAllStringSubmatch(frame, -1) {
			layers[m[1]]++
			drewLayers = true
		}
		if len(layers) > 5 {
			t.Errorf("a frame of the pull of a 5-layer image shows %d layers:\n%q", len(layers), frame)
		}
		for digest, n := range layers {
			if n > 1 {
				t.Errorf("a frame shows layer %s %d times:\n%q", digest, n, frame)
			}
		}
	}
	if !drewLayers {
		t.Errorf("pull at a terminal drew no per-layer progress line:\n%q", out)
	}
	mustContain(t, "images after pull", pe.cliOK(t, "images"), "nodeagent-bench/layers5")
	if _, err := pe.d.Images.RemoveImage(framework.Ctx(t), &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: image}}); err != nil {
		t.Errorf("RemoveImage: %v", err)
	}
}

// throttledMirror proxies upstream, sending blobs at about rate bytes/s.
func throttledMirror(t *testing.T, upstream string, rate int) string {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ModifyResponse = func(resp *http.Response) error {
		if strings.Contains(resp.Request.URL.Path, "/blobs/") {
			resp.Body = &throttled{rc: resp.Body, rate: rate}
		}
		return nil
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return srv.URL
}

type throttled struct {
	rc   io.ReadCloser
	rate int
}

func (r *throttled) Read(p []byte) (int, error) {
	const chunk = 64 << 10
	if len(p) > chunk {
		p = p[:chunk]
	}
	n, err := r.rc.Read(p)
	time.Sleep(time.Duration(n) * time.Second / time.Duration(r.rate))
	return n, err
}

func (r *throttled) Close() error { return r.rc.Close() }

// TestCrictlLiteDoctorLeaks plants real leaks as a crashed runtime leaves
// them: a pinned network namespace of a sandbox no record owns, with a veth
// from the test's bridge into it. doctor finds both; --fix removes both.
func TestCrictlLiteDoctorLeaks(t *testing.T) {
	e := newPodEnv(t)
	br := e.br

	id := strings.Repeat("cd", 32)
	pinDir := filepath.Join(e.d.State, "ns", id)
	pin := filepath.Join(pinDir, "net")
	if err := os.MkdirAll(pinDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pin, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A fresh netns, pinned by a bind mount, as the daemon pins its pods'.
	if out, err := exec.Command("unshare", "--net="+pin, "true").CombinedOutput(); err != nil {
		t.Fatalf("unshare --net=%s: %v\n%s", pin, err, out)
	}
	hostEnd := "nadoc" + id[:6]
	t.Cleanup(func() { // only if doctor --fix did not
		_ = exec.Command("ip", "link", "del", hostEnd).Run()
		_ = unix.Unmount(pin, unix.MNT_DETACH)
		_ = os.RemoveAll(pinDir)
	})
	bridge, err := netlink.LinkByName(br.Bridge)
	if err != nil {
		t.Fatalf("bridge %s: %v", br.Bridge, err)
	}
	ns, err := os.Open(pin)
	if err != nil {
		t.Fatal(err)
	}
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostEnd, MasterIndex: bridge.Attrs().Index},
		PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns.Fd()))}
	err = netlink.LinkAdd(veth)
	ns.Close()
	if err != nil {
		t.Fatalf("add veth %s into %s: %v", hostEnd, pin, err)
	}
	if err := netlink.LinkSetUp(veth); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := e.cli(t, "doctor")
	t.Logf("doctor:\n%s%s", out, errOut)
	if code != 1 {
		t.Errorf("doctor with planted leaks: exit %d, want 1", code)
	}
	mustContain(t, "doctor", out, pinDir, hostEnd+" (on "+br.Bridge+")")
	for _, line := range strings.Split(out, "\n") {
		if (strings.Contains(line, pinDir) || strings.Contains(line, hostEnd)) && !strings.Contains(line, "true") {
			t.Errorf("doctor does not judge a planted leak ours: %s", line)
		}
	}

	out, errOut, code = e.cli(t, "doctor", "--fix")
	t.Logf("doctor --fix:\n%s%s", out, errOut)
	if code != 0 {
		t.Errorf("doctor --fix: exit %d, want 0", code)
	}
	if _, err := netlink.LinkByName(hostEnd); err == nil {
		t.Errorf("doctor --fix left veth %s", hostEnd)
	}
	if _, err := os.Stat(pinDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("doctor --fix left %s: %v", pinDir, err)
	}
	mustContain(t, "doctor after --fix", e.cliOK(t, "doctor"), "No leaks found.")
}
