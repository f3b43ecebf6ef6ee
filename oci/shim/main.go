package shim

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	runc "github.com/containerd/go-runc"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/oci/runtime"
)

// Files of a shim's state dir.
const (
	socketName = "shim.sock"
	lockName   = "shim.lock"
	logName    = "shim.log"
)

// readyFD is where `launch` and `serve` find the pipe on which serve tells
// the daemon that it serves ("ok") or why it could not.
const readyFD = 3

// readyOK is serve's report that it accepts connections; busyPrefix starts
// the report that another shim holds the state dir.
const (
	readyOK    = "ok"
	busyPrefix = "busy: "
)

// Main is `nodeagent shim <launch|serve> --id --state-dir --runtime
// --runtime-root`; the daemon's main calls it before anything else runs and
// exits with its result.
//
// launch starts serve in a new session and exits at once, so that serve is
// reparented away from the daemon; the daemon reaps launch.
func Main(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: nodeagent shim launch|serve --id ID --state-dir DIR --runtime PATH --runtime-root DIR")
		return 2
	}
	f, err := parseFlags(args[0], args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	switch args[0] {
	case "launch":
		return launchServe(args[1:])
	case "serve":
		return serve(f)
	default:
		fmt.Fprintf(os.Stderr, "nodeagent shim: unknown command %q\n", args[0])
		return 2
	}
}

type flags struct{ id, stateDir, runtimePath, runtimeRoot string }

func parseFlags(name string, args []string) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("shim "+name, flag.ContinueOnError)
	fs.StringVar(&f.id, "id", "", "pod sandbox id")
	fs.StringVar(&f.stateDir, "state-dir", "", "the shim's state dir (socket, exit records, log)")
	fs.StringVar(&f.runtimePath, "runtime", "", "OCI runtime binary")
	fs.StringVar(&f.runtimeRoot, "runtime-root", "", "OCI runtime state dir (--root)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if f.id == "" || f.stateDir == "" || f.runtimePath == "" || f.runtimeRoot == "" {
		return f, errors.New("shim: --id, --state-dir, --runtime and --runtime-root are required")
	}
	return f, nil
}

// launchServe starts `shim serve` with the same flags, detached, handing it
// stdio and the ready pipe, and does not wait for it.
func launchServe(args []string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "shim launch:", err)
		return 1
	}
	cmd := exec.Command(self, append([]string{"shim", "serve"}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{os.NewFile(readyFD, "ready")}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "shim launch:", err)
		return 1
	}
	return 0
}

// serve is the shim proper. It returns when a client that asked for Shutdown
// closes its connection.
func serve(f flags) int {
	ready := os.NewFile(readyFD, "ready")
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, nil)).With("sandbox", f.id))
	// The subreaper bit must be set before any container is created: runc's
	// init is reparented to the nearest subreaper when runc create exits.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fail(ready, fmt.Errorf("set child subreaper: %w", err))
	}
	lock, err := lockStateDir(f.stateDir)
	if err != nil {
		return fail(ready, err)
	}
	defer lock.Close()
	r := startReaper()
	runc.Monitor = r
	l, err := listen(filepath.Join(f.stateDir, socketName))
	if err != nil {
		return fail(ready, err)
	}
	streams, err := listenStreams(filepath.Join(f.stateDir, streamSocketName))
	if err != nil {
		l.Close()
		return fail(ready, err)
	}
	s := newShim(f.id, f.stateDir, runtime.New(f.runtimePath, f.runtimeRoot), r)
	go s.acceptStreams(streams)
	io.WriteString(ready, readyOK+"\n")
	ready.Close()
	slog.Info("serving", "pid", os.Getpid(), "runtime", f.runtimePath)
	acceptUntilShutdown(s, l)
	streams.Close()
	os.Remove(filepath.Join(f.stateDir, streamSocketName))
	os.Remove(filepath.Join(f.stateDir, socketName))
	os.Remove(filepath.Join(f.stateDir, lockName))
	slog.Info("exiting")
	return 0
}

func fail(ready *os.File, err error) int {
	slog.Error("shim", "err", err)
	io.WriteString(ready, err.Error()+"\n")
	ready.Close()
	return 1
}

// lockStateDir makes sure one shim at most serves a state dir; the lock dies
// with the process.
func lockStateDir(dir string) (*os.File, error) {
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("shim lock: %w", err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%sanother shim serves %s: %w", busyPrefix, dir, err)
	}
	return lock, nil
}

// listen binds the socket, replacing one a dead shim left; the state dir's
// lock says no live shim uses it.
func listen(path string) (*net.UnixListener, error) {
	os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("shim socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("shim socket: %w", err)
	}
	return l, nil
}

func acceptUntilShutdown(s *shim, l *net.UnixListener) {
	exit := make(chan struct{})
	var once sync.Once
	go func() {
		for {
			conn, err := l.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				// Out of fds, most likely: let in-flight calls finish.
				slog.Warn("accept", "err", err)
				time.Sleep(10 * time.Millisecond)
				continue
			}
			go func() {
				if s.serveConn(conn) {
					once.Do(func() { close(exit) })
				}
			}()
		}
	}()
	<-exit
	l.Close()
}
