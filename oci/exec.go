package oci

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
)

// ExecResult is what ExecSync returns.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int32
}

// ExecSync runs cmd in a running container and returns its output. A
// timeout kills the process and wraps context.DeadlineExceeded.
func (m *Manager) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (ExecResult, error) {
	if len(cmd) == 0 {
		return ExecResult{}, fmt.Errorf("cmd: required: %w", errdefs.ErrInvalidArgument)
	}
	c, err := m.Get(id)
	if err != nil {
		return ExecResult{}, err
	}
	rec := c.Record()
	if rec.State != StateRunning {
		return ExecResult{}, fmt.Errorf("container %s is %s, not RUNNING: %w", rec.ID, rec.State, errdefs.ErrFailedPrecondition)
	}
	if c.process == nil {
		return ExecResult{}, fmt.Errorf("container %s has no process spec to exec with: %w", rec.ID, errdefs.ErrFailedPrecondition)
	}
	sh, err := m.shims.lookup(rec.SandboxID)
	if err != nil {
		return ExecResult{}, fmt.Errorf("container %s: its pod's shim is gone: %w", rec.ID, errdefs.ErrFailedPrecondition)
	}
	p := *c.process
	p.Args = cmd
	p.Terminal = false
	p.ConsoleSize = nil
	stdout, stderr, code, err := sh.ExecSync(ctx, rec.ID, p, timeout)
	if err != nil {
		return ExecResult{}, err
	}
	return ExecResult{Stdout: stdout, Stderr: stderr, ExitCode: code}, nil
}

// ReopenLog asks the shim to reopen a running container's log file after
// kubelet rotated it.
func (m *Manager) ReopenLog(ctx context.Context, id string) error {
	c, err := m.Get(id)
	if err != nil {
		return err
	}
	rec := c.Record()
	if rec.State != StateRunning {
		return fmt.Errorf("container %s is not running: %w", rec.ID, errdefs.ErrFailedPrecondition)
	}
	sh, err := m.shims.lookup(rec.SandboxID)
	if err != nil {
		return fmt.Errorf("container %s: its pod's shim is gone: %w", rec.ID, errdefs.ErrFailedPrecondition)
	}
	return sh.ReopenLog(ctx, rec.ID)
}
