// Package framework starts real nodeagent daemons for end-to-end tests and
// talks to them through the CRI gRPC API, as kubelet does.
package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/leakcheck"
)

// Daemon is one nodeagent started for a test, with its own directories.
type Daemon struct {
	Dir    string // everything of this daemon lives below Dir
	Root   string
	State  string
	Socket string
	CNIDir string

	Runtime runtimeapi.RuntimeServiceClient
	Images  runtimeapi.ImageServiceClient

	args []string
	env  []string // extra environment of the next Start
	// scope grows as the test adds networks; cleanups run after the leak check.
	scope        leakcheck.Scope
	cleanups     []func()
	cgroupParent string
	cmd          *exec.Cmd
	done         chan struct{}
	conn         *grpc.ClientConn
	log          *syncBuffer
	// started is the footprint once the last Start answered.
	started daemonFootprint
}

// Options tune a daemon.
type Options struct {
	// Args are extra command-line flags.
	Args []string
	// Config is the content of the daemon's config file (may be empty).
	Config string
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// Binary returns the nodeagent binary under test: $NODEAGENT_BIN (make test
// sets it to the freshly built bin/nodeagent) or one built once per process.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("NODEAGENT_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "nodeagent-e2e-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildPath = filepath.Join(dir, "nodeagent")
		cmd := exec.Command("go", "build", "-o", buildPath, "github.com/nodeagent/nodeagent/cmd/nodeagent")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// RequireRoot fails (never skips) a test that needs root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: run it as root, as make test does")
	}
}

// NewDaemon lays out fresh directories for a daemon without starting it.
func NewDaemon(t testing.TB, o Options) *Daemon {
	t.Helper()
	RequireRoot(t)
	// Short base: unix socket paths must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "na-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// Traversable by others, as /run and /var/lib are: root of a
	// user-namespace pod is an unprivileged host uid.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	d := &Daemon{
		Dir:    dir,
		Root:   filepath.Join(dir, "root"),
		State:  filepath.Join(dir, "state"),
		Socket: filepath.Join(dir, "state", "nodeagent.sock"),
		CNIDir: filepath.Join(dir, "cni"),
	}
	if err := os.MkdirAll(d.CNIDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), []byte(o.Config), 0o644); err != nil {
		t.Fatal(err)
	}
	d.args = append([]string{
		"--config", filepath.Join(dir, "config.toml"),
		"--root", d.Root, "--state", d.State, "--socket", d.Socket,
		"--cni-conf-dir", d.CNIDir, "-v", "4",
	}, o.Args...)
	d.scope = leakcheck.Scope{Dirs: []string{dir}, ProcessMarkers: []string{dir}}
	before := leakcheck.Take(d.scope)
	// One cleanup, in a fixed order: remove what the test left, stop the
	// daemon, check for leaks, then remove the test's own networks.
	t.Cleanup(func() {
		if d.cmd != nil {
			d.RemoveAllPods(t)
			if d.started.fds > 0 && d.conn != nil {
				d.checkFootprint(t, d.started)
			}
			d.Stop(t)
		}
		if leaks := leakcheck.Leaks(before, leakcheck.Take(d.scope)); len(leaks) > 0 {
			t.Errorf("leaked %d item(s):\n  %s", len(leaks), strings.Join(leaks, "\n  "))
		}
		for i := len(d.cleanups) - 1; i >= 0; i-- {
			d.cleanups[i]()
		}
	})
	return d
}

// AddCleanup runs fn after the daemon stopped and the leak check ran.
func (d *Daemon) AddCleanup(fn func()) { d.cleanups = append(d.cleanups, fn) }

// ExtendScope widens what the leak check covers.
func (d *Daemon) ExtendScope(fn func(leakcheck.Scope) leakcheck.Scope) { d.scope = fn(d.scope) }

// RemoveAllPods stops and removes every sandbox, as kubelet would for a
// drained node, so a failed test does not leave pods on the machine.
func (d *Daemon) RemoveAllPods(t testing.TB) {
	t.Helper()
	if d.Runtime == nil { // never connected: the daemon did not start
		return
	}
	ctx := Ctx(t)
	pods, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Errorf("list pods at cleanup: %v", err)
		return
	}
	for _, p := range pods.Items {
		if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			t.Errorf("stop pod %s at cleanup: %v", p.Id, err)
		}
		if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: p.Id}); err != nil {
			t.Errorf("remove pod %s at cleanup: %v", p.Id, err)
		}
	}
}

// StartDaemon starts a daemon and connects to it; it is stopped when the test ends.
func StartDaemon(t testing.TB, o Options) *Daemon {
	t.Helper()
	d := NewDaemon(t, o)
	d.Start(t)
	return d
}

// Start runs the daemon and waits until its socket answers.
func (d *Daemon) Start(t testing.TB) {
	t.Helper()
	d.log = &syncBuffer{}
	d.cmd = exec.Command(Binary(t), d.args...)
	d.cmd.Env = append(os.Environ(), d.env...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d.done = make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(d.done) }()
	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	d.conn = conn
	d.Runtime = runtimeapi.NewRuntimeServiceClient(conn)
	d.Images = runtimeapi.NewImageServiceClient(conn)
	// Ready means answering: a stale socket file may exist before the daemon
	// replaces it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := d.Runtime.Version(ctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil {
			// The baseline of the end-of-test footprint check.
			if d.started, err = d.footprint(t); err != nil {
				t.Fatalf("daemon footprint at start: %v", err)
			}
			return
		}
		select {
		case <-d.done:
			t.Fatalf("nodeagent exited at start: %v\n%s", d.cmd.ProcessState, d.log.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodeagent did not answer in 30s: %v\n%s", err, d.log.String())
		}
	}
}

// Stop sends SIGTERM and waits for a clean exit; a second Stop does nothing.
func (d *Daemon) Stop(t testing.TB) {
	t.Helper()
	if d.cmd == nil {
		return
	}
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.done
		t.Errorf("nodeagent did not stop on SIGTERM\n%s", d.log.String())
	}
	if !d.cmd.ProcessState.Success() {
		t.Errorf("nodeagent exited with %v\n%s", d.cmd.ProcessState, d.log.String())
	}
	d.cmd = nil
}

// SetEnv sets extra environment variables ("K=V") for the next Starts;
// SetEnv() with none clears them.
func (d *Daemon) SetEnv(env ...string) { d.env = env }

// WaitCrash waits up to timeout for the daemon to die by SIGKILL (a fault
// point fired) and fails the test if it is still running or ended otherwise.
func (d *Daemon) WaitCrash(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-d.done:
	case <-time.After(timeout):
		t.Fatalf("nodeagent still running %v after the fault point should have fired\n%s", timeout, d.log.String())
	}
	ws, _ := d.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("nodeagent ended with %v, want SIGKILL from a fault point\n%s", d.cmd.ProcessState, d.log.String())
	}
	d.Kill(t)
}

// Kill ends the daemon with SIGKILL, as a crash would.
func (d *Daemon) Kill(t testing.TB) {
	t.Helper()
	if d.cmd == nil {
		return
	}
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
	_ = d.cmd.Process.Kill()
	<-d.done
	d.cmd = nil
}

// Run starts the daemon binary with this daemon's flags plus extra ones and
// returns its combined output and exit error; for start-up failure tests.
func (d *Daemon) Run(t testing.TB, extra ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, Binary(t), append(append([]string{}, d.args...), extra...)...).CombinedOutput()
	return string(out), err
}

// Log returns what the daemon has logged so far.
func (d *Daemon) Log() string { return d.log.String() }

// Ctx returns a context bounded for one CRI call.
func Ctx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// PID is the running daemon's process id (0 when stopped).
func (d *Daemon) PID() int {
	if d.cmd == nil || d.cmd.Process == nil {
		return 0
	}
	return d.cmd.Process.Pid
}
