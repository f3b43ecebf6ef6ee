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
type container struct {
	mu      sync.Mutex
	st      State
	created bool
	io      *stdio
	logs    *logFile
	oom     *oomCounter
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

// create runs the runtime's create for a reserved container; on failure it
// leaves nothing behind but the reservation, which the caller releases.
func (s *shim) create(ctx context.Context, c *container, req CreateRequest) error {
	logs, err := openLog(req.LogPath)
	if err != nil {
		return err
	}
	io, err := s.newStdio(req)
	if err != nil {
		logs.close()
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
		logs.close()
		s.undoCreate(req.ID)
		return err
	}
	exit := s.reaper.Subscribe(pid, gen)
	io.copyTo(logs)
	c.mu.Lock()
	c.st = State{ID: req.ID, Pid: pid, Status: StatusCreated, CreatedAt: time.Now()}
	c.created, c.io, c.logs, c.oom = true, io, logs, newOOMCounter(pid)
	c.tty, c.stdin, c.stdinOnce = req.Tty, req.Stdin, req.StdinOnce
	s.events.publish(c.st)
	c.mu.Unlock()
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

// start starts a created container. StartedAt is set before the runtime
// runs, so that an init that exits at once still has it in its exit record.
func (s *shim) start(ctx context.Context, id string) error {
	c, err := s.lookup(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.st.Status != StatusCreated {
		c.mu.Unlock()
		return fmt.Errorf("container %s is %s: %w", id, c.st.Status, errdefs.ErrFailedPrecondition)
	}
	c.st.StartedAt = time.Now()
	c.mu.Unlock()
	err = s.rt.Start(ctx, id)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st.Status != StatusCreated {
		return nil // exited already; the exit event tells
	}
	if err != nil {
		c.st.StartedAt = time.Time{}
		return err
	}
	c.st.Status = StatusRunning
	s.events.publish(c.st)
	return nil
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
	if err := s.rt.Delete(ctx, id); err != nil {
		return err
	}
	// The runtime killed the init; its exit is ours to reap and record.
	select {
	case <-c.exited:
	case <-ctx.Done():
		return fmt.Errorf("delete %s: waiting for the exit: %w", id, ctx.Err())
	}
	c.io.close()
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
