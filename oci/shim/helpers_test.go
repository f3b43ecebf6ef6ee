package shim_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nodeagent/nodeagent/internal/leakcheck"
	"github.com/nodeagent/nodeagent/oci/runtime"
	"github.com/nodeagent/nodeagent/oci/shim"
)

const (
	runcPath     = "/usr/local/sbin/runc"
	busyboxCache = "/var/cache/nodeagent-test/busybox-static"
)

// Set up once by TestMain.
var (
	rootfs       string // busybox, shared read-only by every container
	cgroupParent string // e.g. /nodeagent-test-<rand>
	skipReason   string
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "shim" {
		os.Exit(shim.Main(os.Args[2:]))
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "shimtest-rootfs-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	cgroupParent = "/nodeagent-test-" + randHex(6)
	defer removeCgroupParent(cgroupParent)
	switch {
	case os.Geteuid() != 0:
		skipReason = "needs root"
	default:
		if rootfs, err = buildRootfs(dir); err != nil {
			skipReason = "no busybox rootfs: " + err.Error()
		} else if _, err := os.Stat(runcPath); err != nil {
			skipReason = "no runc: " + err.Error()
		}
	}
	return m.Run()
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// buildRootfs unpacks Debian's busybox-static into dir/rootfs with a link per
// applet, downloading the package into the cache on first use.
func buildRootfs(dir string) (string, error) {
	debs, _ := filepath.Glob(filepath.Join(busyboxCache, "busybox-static_*.deb"))
	if len(debs) == 0 {
		if err := downloadBusybox(); err != nil {
			return "", err
		}
		debs, _ = filepath.Glob(filepath.Join(busyboxCache, "busybox-static_*.deb"))
		if len(debs) == 0 {
			return "", fmt.Errorf("no busybox-static package in %s", busyboxCache)
		}
	}
	x := filepath.Join(dir, "x")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], x).CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb: %v: %s", err, out)
	}
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "proc", "dev", "sys", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return "", err
		}
	}
	if err := os.Rename(filepath.Join(x, "bin", "busybox"), filepath.Join(root, "bin", "busybox")); err != nil {
		return "", err
	}
	out, err := exec.Command(filepath.Join(root, "bin", "busybox"), "--list").Output()
	if err != nil {
		return "", fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			os.Symlink("busybox", filepath.Join(root, "bin", applet))
		}
	}
	return root, nil
}

func downloadBusybox() error {
	if err := os.MkdirAll(busyboxCache, 0o755); err != nil {
		return err
	}
	get := func() error {
		cmd := exec.Command("apt-get", "download", "busybox-static")
		cmd.Dir = busyboxCache
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get download: %v: %s", err, out)
		}
		return nil
	}
	if get() == nil {
		return nil
	}
	if out, err := exec.Command("apt-get", "update").CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get update: %v: %s", err, out)
	}
	return get()
}

// removeCgroupParent removes the test's parent cgroup from every hierarchy;
// runc removes the containers' own cgroups below it.
func removeCgroupParent(parent string) {
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + parent)
	dirs = append(dirs, "/sys/fs/cgroup"+parent)
	for _, d := range dirs {
		os.Remove(d)
	}
}

// env is one test's shim world: state dirs, runtime root, leak checks.
type env struct {
	t           testing.TB
	dir         string
	stateDir    string
	runtimeRoot string
	logDir      string
	rt          *runtime.Runtime
}

func newEnv(t testing.TB) *env {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	dir := t.TempDir()
	e := &env{
		t:           t,
		dir:         dir,
		stateDir:    filepath.Join(dir, "shim"),
		runtimeRoot: filepath.Join(dir, "runc"),
		logDir:      filepath.Join(dir, "logs"),
	}
	e.rt = runtime.New(runcPath, e.runtimeRoot)
	if err := os.MkdirAll(e.logDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after every later cleanup.
	leakcheck.Check(t, leakcheck.Scope{
		Dirs:           []string{dir},
		ProcessMarkers: []string{dir},
		CgroupParents:  []string{cgroupParent},
	})
	t.Cleanup(e.checkRuntimeRoot)
	return e
}

func (e *env) checkRuntimeRoot() {
	entries, _ := os.ReadDir(e.runtimeRoot)
	for _, en := range entries {
		e.t.Errorf("runtime state left behind: %s", filepath.Join(e.runtimeRoot, en.Name()))
	}
}

func (e *env) options() shim.Options {
	return shim.Options{SandboxID: "pod-" + randHex(4), StateDir: e.stateDir,
		RuntimePath: runcPath, RuntimeRoot: e.runtimeRoot}
}

// launch starts the shim; cleanup deletes every container left and shuts it
// down, so a failing test leaves nothing behind either.
func (e *env) launch() *shim.Client {
	e.t.Helper()
	c, err := shim.Launch(ctx(e.t), e.options())
	if err != nil {
		e.t.Fatalf("Launch: %v", err)
	}
	e.t.Cleanup(func() { e.teardown() })
	return c
}

func (e *env) teardown() {
	c, err := shim.Connect(context.Background(), e.stateDir)
	if err != nil {
		return // already shut down
	}
	defer c.Close()
	sts, _ := c.States(context.Background())
	for _, st := range sts {
		if err := c.Delete(context.Background(), st.ID); err != nil {
			e.t.Errorf("cleanup delete %s: %v", st.ID, err)
		}
	}
	if err := c.Shutdown(context.Background()); err != nil {
		e.t.Errorf("cleanup shutdown: %v", err)
	}
}

type specOpt func(*specs.Spec)

func hostPID(s *specs.Spec) {
	var ns []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type != specs.PIDNamespace {
			ns = append(ns, n)
		}
	}
	s.Linux.Namespaces = ns
}

func tty(s *specs.Spec) { s.Process.Terminal = true }

// bundle writes a bundle for the busybox rootfs running args.
func (e *env) bundle(id string, args []string, opts ...specOpt) (string, *specs.Spec) {
	e.t.Helper()
	dir := filepath.Join(e.dir, "bundles", id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.t.Fatal(err)
	}
	spec := &specs.Spec{
		Version:  specs.Version,
		Process:  process(args...),
		Root:     &specs.Root{Path: rootfs, Readonly: true},
		Hostname: id,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "size=16m"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgroupParent + "/" + id,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
		},
	}
	for _, o := range opts {
		o(spec)
	}
	doc, err := json.Marshal(spec)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), doc, 0o644); err != nil {
		e.t.Fatal(err)
	}
	return dir, spec
}

func process(args ...string) *specs.Process {
	return &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin"}}
}

// run creates and starts a container and returns its log path.
func (e *env) run(c *shim.Client, id string, args []string, opts ...specOpt) string {
	e.t.Helper()
	logPath := filepath.Join(e.logDir, id+".log")
	bundle, spec := e.bundle(id, args, opts...)
	req := shim.CreateRequest{ID: id, Bundle: bundle, LogPath: logPath, Tty: spec.Process.Terminal}
	if _, err := c.Create(ctx(e.t), req); err != nil {
		e.t.Fatalf("Create %s: %v", id, err)
	}
	if _, err := c.Start(ctx(e.t), id); err != nil {
		e.t.Fatalf("Start %s: %v", id, err)
	}
	return logPath
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// waitStopped reads events until id has stopped.
func waitStopped(t testing.TB, c *shim.Client, id string) shim.State {
	t.Helper()
	for st := range c.Events() {
		if st.ID == id && st.Status == shim.StatusStopped {
			return st
		}
	}
	t.Fatalf("events ended before %s stopped", id)
	return shim.State{}
}

// waitFor polls cond: for output that reaches a file asynchronously. The
// test's own deadline bounds it; no duration is asserted.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

func shimCreate(id, bundle, logDir string) shim.CreateRequest {
	return shim.CreateRequest{ID: id, Bundle: bundle, LogPath: filepath.Join(logDir, id+".log")}
}
