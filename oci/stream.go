package oci

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/nodeagent/nodeagent/oci/shim"
)

// TermSize is a terminal's size in characters.
type TermSize = shim.TermSize

// Streams are a streaming client's ends of an exec or attach; nil streams
// were not requested.
type Streams = shim.Streams

// ExitError is the non-zero exit of an exec'd process. Its methods are those
// of k8s.io/utils/exec.ExitError, which the streaming server reports to the
// client with the code.
type ExitError struct{ Code int }

func (e *ExitError) Error() string   { return fmt.Sprintf("command exited with code %d", e.Code) }
func (e *ExitError) String() string  { return e.Error() }
func (e *ExitError) Exited() bool    { return true }
func (e *ExitError) ExitStatus() int { return e.Code }

// CheckExec tells whether a process can be exec'd in the container now: it
// must exist (NotFound) and run (FailedPrecondition). The Exec RPC asks
// before handing out a URL, so that bad input fails there.
func (m *Manager) CheckExec(id string) error {
	_, err := m.streamable(id)
	return err
}

// CheckAttach is CheckExec for attach, which also needs tty to match the
// container's (InvalidArgument).
func (m *Manager) CheckAttach(id string, tty bool) error {
	c, err := m.streamable(id)
	if err != nil {
		return err
	}
	if want := c.Record().Config.GetTty(); tty != want {
		return fmt.Errorf("tty: container %s was created with tty=%v: %w", id, want, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (m *Manager) streamable(id string) (*Container, error) {
	c, err := m.Get(id)
	if err != nil {
		return nil, err
	}
	if rec := c.Record(); rec.State != StateRunning {
		return nil, fmt.Errorf("container %s is %s, not RUNNING: %w", rec.ID, rec.State, errdefs.ErrFailedPrecondition)
	}
	return c, nil
}

// Exec runs cmd in a running container, interactively, until it exits; a
// non-zero exit is an *ExitError (returned unwrapped: the streaming server
// type-asserts it). The process runs under the pod's shim, the subreaper
// that can reap it, and is killed if ctx ends or the client goes.
func (m *Manager) Exec(ctx context.Context, id string, cmd []string, tty bool, s Streams) error {
	if len(cmd) == 0 {
		return fmt.Errorf("cmd: required: %w", errdefs.ErrInvalidArgument)
	}
	c, err := m.streamable(id)
	if err != nil {
		return err
	}
	if c.process == nil {
		return fmt.Errorf("container %s has no process spec to exec with: %w", id, errdefs.ErrFailedPrecondition)
	}
	sh, err := m.shims.lookup(c.Record().SandboxID)
	if err != nil {
		return fmt.Errorf("container %s: its pod's shim is gone: %w", id, errdefs.ErrFailedPrecondition)
	}
	p := *c.process
	p.Args = cmd
	p.Terminal = tty
	p.ConsoleSize = nil
	if tty {
		p.ConsoleSize = firstSize(s.Resize)
	}
	code, err := sh.Exec(ctx, c.Record().ID, p, s)
	if err != nil {
		return err
	}
	if code != 0 {
		return &ExitError{Code: int(code)}
	}
	return nil
}

// Attach attaches the streams to a running container's init until it exits
// or the client detaches. Input is dropped unless the container was created
// with stdin.
func (m *Manager) Attach(ctx context.Context, id string, tty bool, s Streams) error {
	if err := m.CheckAttach(id, tty); err != nil {
		return err
	}
	c, err := m.Get(id)
	if err != nil {
		return err
	}
	rec := c.Record()
	sh, err := m.shims.lookup(rec.SandboxID)
	if err != nil {
		return fmt.Errorf("container %s: its pod's shim is gone: %w", id, errdefs.ErrFailedPrecondition)
	}
	return sh.Attach(ctx, rec.ID, tty, s)
}

// firstSizeWait bounds the wait for a terminal client's first size.
const firstSizeWait = 250 * time.Millisecond

// firstSize waits briefly for the client's terminal size, so that the
// process starts on a terminal of the right size: a resize that arrives
// after it started races what it prints first (`stty size` would say 0 0).
// Clients send their size as soon as the streams are up.
func firstSize(resize <-chan TermSize) *specs.Box {
	if resize == nil {
		return nil
	}
	select {
	case ts, ok := <-resize:
		if ok && ts.Width > 0 && ts.Height > 0 {
			return &specs.Box{Width: uint(ts.Width), Height: uint(ts.Height)}
		}
	case <-time.After(firstSizeWait):
	}
	return nil
}
