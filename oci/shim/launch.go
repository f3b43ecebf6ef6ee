package shim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/containerd/errdefs"
)

// maxSocketPath is the longest unix socket path (sun_path is 108 bytes,
// NUL included).
const maxSocketPath = 107

// Options say which shim to launch.
type Options struct {
	SandboxID string
	// StateDir holds the shim's socket, its log and the exit records, e.g.
	// <state>/shims/<sandbox id>.
	StateDir string
	// RuntimePath is the OCI runtime binary; RuntimeRoot its --root.
	RuntimePath, RuntimeRoot string
	// Binary is the nodeagent binary to re-exec; default: this process's.
	Binary string
}

func (o *Options) validate() error {
	if o.SandboxID == "" || o.RuntimePath == "" || o.RuntimeRoot == "" {
		return fmt.Errorf("shim options: sandbox id, runtime path and runtime root are required: %w", errdefs.ErrInvalidArgument)
	}
	if !filepath.IsAbs(o.StateDir) || !filepath.IsAbs(o.RuntimeRoot) {
		return fmt.Errorf("shim options: state dir %q and runtime root %q must be absolute: %w", o.StateDir, o.RuntimeRoot, errdefs.ErrInvalidArgument)
	}
	if sock := filepath.Join(o.StateDir, socketName); len(sock) > maxSocketPath {
		return fmt.Errorf("shim socket path %q is longer than %d bytes: %w", sock, maxSocketPath, errdefs.ErrInvalidArgument)
	}
	if o.Binary == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("shim binary: %w", err)
		}
		o.Binary = self
	}
	return nil
}

// Launch starts the shim of a pod, or connects to it if it already runs, and
// returns once it serves. The shim runs in its own session and is not a child
// of the caller, which reaps the short-lived launcher before returning.
func Launch(ctx context.Context, o Options) (*Client, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	if c, err := Connect(ctx, o.StateDir); !errdefs.IsNotFound(err) {
		return c, err
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("shim state dir: %w", err)
	}
	report, err := launch(ctx, o)
	if err != nil {
		return nil, err
	}
	switch {
	case report == readyOK:
	case strings.HasPrefix(report, busyPrefix):
		// Another Launch won the race; it serves or soon will.
	default:
		return nil, fmt.Errorf("shim of sandbox %s: %s%s: %w", o.SandboxID, report, logTail(o.StateDir), errdefs.ErrInternal)
	}
	return Connect(ctx, o.StateDir)
}

// launch runs `<binary> shim launch` and returns what the shim reported on
// the ready pipe.
func launch(ctx context.Context, o Options) (string, error) {
	logf, err := os.OpenFile(filepath.Join(o.StateDir, logName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("shim log: %w", err)
	}
	defer logf.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return "", err
	}
	defer readyR.Close()
	cmd := exec.Command(o.Binary, "shim", "launch", "--id", o.SandboxID, "--state-dir", o.StateDir,
		"--runtime", o.RuntimePath, "--runtime-root", o.RuntimeRoot)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.Dir = "/"
	err = cmd.Run()
	readyW.Close()
	if err != nil {
		return "", fmt.Errorf("shim launcher: %v%s: %w", err, logTail(o.StateDir), errdefs.ErrInternal)
	}
	if deadline, ok := ctx.Deadline(); ok {
		readyR.SetReadDeadline(deadline)
	}
	// EOF comes when serve has reported (or died): the launcher is gone and
	// our copy of the write end is closed.
	raw, err := io.ReadAll(io.LimitReader(readyR, 4096))
	if err != nil {
		return "", fmt.Errorf("waiting for the shim: %w", err)
	}
	report := strings.TrimSpace(string(raw))
	if report == "" {
		report = "exited before serving"
	}
	return report, nil
}

// logTail quotes the end of the shim's log for an error message.
func logTail(stateDir string) string {
	raw, err := os.ReadFile(filepath.Join(stateDir, logName))
	if err != nil || len(raw) == 0 {
		return ""
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) > 1024 {
		raw = raw[len(raw)-1024:]
	}
	return "; shim log: " + string(raw)
}
