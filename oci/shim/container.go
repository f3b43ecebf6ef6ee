package shim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	runc "github.com/containerd/go-runc"

	"github.com/nodeagent/nodeagent/oci/runtime"
)

// ioGrace is how long an exit waits for the container's output to reach the
// log after its init died: everything the init wrote is already in the pipes,
// but processes it left in a shared PID namespace may hold them open forever.
const ioGrace = 2 * time.Second

// container is one container of the pod. Its status changes only under mu,
// and is published to the event hub under mu so that the latest event is the
// latest state.
//
// Create only registers it: the runtime creates it (runc create, whose
// `runc init` would wait in the container until started) at Start, as
// containerd does, so that a created container costs no process.
type container struct {
	mu      sync.Mutex
	st      State
	created bool
	// req is what Create was asked; launched is set once the runtime has
	// the container (at Start), with io, oom and the exit watch.
	req      CreateRequest
	launched bool
	io       *stdio
	logs     *logFile
	oom      *oomCounter
	// As created: attach must match tty, and stdin decides what an
	// attached client's input is written to.
	tty, stdin, stdinOnce bool
	// exited is closed once the exit is recorded on disk and published.
	exited chan struct{}
}

func newContainer(id string) *container {
	return &container{st: State{ID: id}, exited: make(chan struct{})}
}

func (c *container) state() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st
}

func (c *container) isCreated() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.created
}

// create registers a reserved container: its log opened (a bad log path
// fails here), its request kept for Start. The runtime is not called yet.
func (s *shim) create(_ context.Context, c *container, req CreateRequest) error {
	logs, err := openLog(req.LogPath)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st = State{ID: req.ID, Status: StatusCreated, CreatedAt: time.Now()}
	c.created, c.req, c.logs = true, req, logs
	c.tty, c.stdin, c.stdinOnce = req.Tty, req.Stdin, req.StdinOnce
	s.events.publish(c.st)
	return nil
}

// launch has the runtime create the container (its init waiting to be
// started), with the stdio and exit watch of its init. On failure it leaves
// nothing of the runtime's behind, and the container registered: a later
// Start tries again. Caller holds c.mu.
func (s *shim) launch(ctx context.Context, c *container) error {
	req := c.req
	io, err := s.newStdio(req)
	if err != nil {
		return err
	}
	opts := runtime.CreateOpts{PidFile: s.pidFile(req.ID), ConsoleSocket: io.socketPath,
		Stdin: io.childIn, Stdout: io.childOut, Stderr: io.childErr}
	gen := s.reaper.Generation()
	pid, err := s.rt.Create(ctx, req.ID, req.Bundle, opts)
	io.closeChildEnds()
	if err == nil && req.Tty {
		err = io.receiveMaster()
	}
	if err != nil {
		io.close()
		s.undoCreate(req.ID)
		return err
	}
	exit := s.reaper.Subscribe(pid, gen)
	io.copyTo(c.logs)
	c.st.Pid = pid
	c.launched, c.io, c.oom = true, io, newOOMCounter(pid)
	go s.waitExit(c, exit)
	return nil
}

func (s *shim) newStdio(req CreateRequest) (*stdio, error) {
	if req.Tty {
		return newConsole(s.consolePath())
	}
	return newPipes(req.Stdin)
}

// undoCreate removes what a failed create may have left: runtime state (a
// create cut short by its context) and the pid file.
func (s *shim) undoCreate(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := s.rt.Delete(ctx, id); err != nil {
		slog.Warn("undo create", "id", id, "err", err)
	}
	os.Remove(s.pidFile(id))
}

// start has the runtime create the container, then start it. StartedAt is
// set before the runtime runs, so that an init that exits at once still has
// it in its exit record.
func (s *shim) start(ctx context.Context, id string) (int, error) {
	c, err := s.lookup(id)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	if c.st.Status != StatusCreated {
		c.mu.Unlock()
		return 0, fmt.Errorf("container %s is %s: %w", id, c.st.Status, errdefs.ErrFailedPrecondition)
	}
	if !c.launched {
		if err := s.launch(ctx, c); err != nil {
			c.mu.Unlock()
			return 0, err
		}
	}
	c.st.StartedAt = time.Now()
	pid := c.st.Pid
	c.mu.Unlock()
	err = s.rt.Start(ctx, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st.Status != StatusCreated {
		return pid, nil // exited already; the exit event tells
	}
	if err != nil {
		c.st.StartedAt = time.Time{}
		return 0, err
	}
	c.st.Status = StatusRunning
	s.events.publish(c.st)
	return pid, nil
}

// waitExit records the init's exit: output drained, reason found, record on
// disk, then the event.
func (s *shim) waitExit(c *container, exit chan runc.Exit) {
	e := <-exit
	c.io.drain(ioGrace)
	code := int32(e.Status)
	oomKilled := c.oom.killed()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.st.Status = StatusStopped
	c.st.ExitCode = code
	c.st.ExitedAt = e.Timestamp
	c.st.Reason = exitReason(code, oomKilled)
	if err := writeExitRecord(s.stateDir, c.st); err != nil {
		slog.Error("exit record", "id", c.st.ID, "err", err)
	}
	s.events.publish(c.st)
	close(c.exited)
}

// kill signals the container. A stopped container has nothing left to
// signal: success, so that StopContainer stays idempotent.
func (s *shim) kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	c, err := s.lookup(id)
	if err != nil {
		return err
	}
	if c.state().Status == StatusStopped {
		return nil
	}
	if c.stopUnlaunched(s, sig) {
		return nil
	}
	err = s.rt.Kill(ctx, id, sig, all)
	if errdefs.IsFailedPrecondition(err) || errdefs.IsNotFound(err) {
		return nil // the init exited meanwhile
	}
	return err
}

// delete removes the container, killing it if it still runs. Unknown ids are
// already deleted: success (RemoveContainer is idempotent).
func (s *shim) delete(ctx context.Context, id string) error {
	c, err := s.lookup(id)
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	c.stopUnlaunched(s, syscall.SIGKILL)
	if c.isLaunched() {
		if err := s.rt.Delete(ctx, id); err != nil {
			return err
		}
	}
	// The runtime killed the init; its exit is ours to reap and record.
	select {
	case <-c.exited:
	case <-ctx.Done():
		return fmt.Errorf("delete %s: waiting for the exit: %w", id, ctx.Err())
	}
	if c.io != nil {
		c.io.close()
	}
	c.logs.close()
	for _, p := range []string{s.pidFile(id), exitRecordPath(s.stateDir, id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			slog.Warn("delete", "id", id, "err", err)
		}
	}
	s.release(id)
	s.events.forget(id)
	return nil
}

func (s *shim) reopenLog(id string) error {
	c, err := s.lookup(id)
	if err != nil {
		return err
	}
	return c.logs.reopen()
}

func (c *container) isLaunched() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.launched
}

// stopUnlaunched ends a container the runtime never had: a SIGKILL (or any
// signal that would end its init) records it exited as a killed init would
// be, 128+signal, with nothing to reap. It reports whether c was such a
// container.
func (c *container) stopUnlaunched(s *shim, sig syscall.Signal) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.launched {
		return false
	}
	if c.st.Status == StatusStopped {
		return true
	}
	c.st.Status = StatusStopped
	c.st.ExitCode = 128 + int32(sig)
	c.st.ExitedAt = time.Now()
	c.st.Reason = exitReason(c.st.ExitCode, false)
	if err := writeExitRecord(s.stateDir, c.st); err != nil {
		slog.Error("exit record", "id", c.st.ID, "err", err)
	}
	s.events.publish(c.st)
	close(c.exited)
	return true
}
