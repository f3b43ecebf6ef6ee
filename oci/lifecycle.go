package oci

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/internal/faults"
	"github.com/nodeagent/nodeagent/oci/shim"
)

// killGrace bounds the wait for a container to die after SIGKILL.
const killGrace = 30 * time.Second

// Get returns the container with this id or unique id prefix.
func (m *Manager) Get(id string) (*Container, error) {
	if id == "" {
		return nil, fmt.Errorf("container_id: required: %w", errdefs.ErrInvalidArgument)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if c, ok := m.containers[id]; ok {
		return c, nil
	}
	var found *Container
	for full, c := range m.containers {
		if strings.HasPrefix(full, id) {
			if found != nil {
				return nil, fmt.Errorf("container id prefix %q is ambiguous: %w", id, errdefs.ErrInvalidArgument)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
	}
	return found, nil
}

// List returns every container record, from memory, newest first.
func (m *Manager) List() []Record {
	m.mu.RLock()
	out := make([]Record, 0, len(m.containers))
	for _, c := range m.containers {
		out = append(out, c.Record())
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt > out[j].CreatedAt })
	return out
}

// ListSandbox returns the records of one pod's containers, from memory,
// without sorting every container of the node: PodSandboxStatus and events
// call it for each pod.
func (m *Manager) ListSandbox(sandboxID string) []Record {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Record
	for _, c := range m.containers {
		if r := c.Record(); r.SandboxID == sandboxID {
			out = append(out, r)
		}
	}
	return out
}

// Start starts a created container.
func (m *Manager) Start(ctx context.Context, id string) error {
	c, err := m.Get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.Record()
	if rec.State != StateCreated {
		return fmt.Errorf("container %s is %s, not CREATED: %w", rec.ID, rec.State, errdefs.ErrFailedPrecondition)
	}
	sh, err := m.shims.lookup(rec.SandboxID)
	if err != nil {
		return fmt.Errorf("container %s: its pod's shim is gone: %w", rec.ID, errdefs.ErrFailedPrecondition)
	}
	start := time.Now()
	faults.Point("container/before-start")
	// Wait for the shim's answer even past our caller's deadline: a start
	// that goes through must be recorded, or the record says CREATED while
	// the container runs.
	sctx, cancel := shimCallContext(ctx)
	defer cancel()
	pid, err := sh.Start(sctx, rec.ID)
	if err != nil {
		return err
	}
	faults.Point("container/after-start")
	m.observe("runtime_start", start)
	_, err = c.update(m.save, func(r *Record) {
		r.Pid = pid
		// The exit may already have been recorded by the event loop.
		if r.State == StateCreated {
			r.State, r.StartedAt = StateRunning, now()
		}
	})
	if err != nil {
		return err
	}
	m.events.Publish(Event{Type: EventStarted, ContainerID: rec.ID, SandboxID: rec.SandboxID, At: now()})
	return nil
}

// Stop sends the stop signal, waits up to timeout, then SIGKILLs. It never
// hangs: the kill is bounded. Stopping a stopped or unknown container
// succeeds (CRI: "If the container has already been stopped, the call is
// successful").
func (m *Manager) Stop(ctx context.Context, id string, timeout time.Duration) error {
	c, err := m.getForTeardown(id)
	if c == nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return m.stopLocked(ctx, c, timeout)
}

// getForTeardown is Get for Stop and Remove: an unknown container is (nil,
// nil), as both must succeed for it.
func (m *Manager) getForTeardown(id string) (*Container, error) {
	c, err := m.Get(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil
	}
	return c, err
}

func (m *Manager) stopLocked(ctx context.Context, c *Container, timeout time.Duration) error {
	rec := c.Record()
	if rec.State == StateExited {
		return nil
	}
	sh, err := m.shims.lookup(rec.SandboxID)
	if err != nil {
		if err := m.reapOrphan(ctx, rec.ID); err != nil {
			return err
		}
		return m.markGone(c, "the container's shim is gone")
	}
	if rec.State == StateCreated {
		// Never started: there is no process to signal gracefully.
		timeout = 0
	}
	if timeout > 0 {
		if err := sh.Kill(ctx, rec.ID, syscall.Signal(rec.StopSignal), false); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		if waitExited(ctx, c, timeout) {
			return nil
		}
	}
	if err := sh.Kill(ctx, rec.ID, syscall.SIGKILL, true); err != nil && !errdefs.IsNotFound(err) {
		return err
	}
	if waitExited(ctx, c, killGrace) {
		return nil
	}
	// A created container SIGKILLed before start has no exit to report:
	// ask the shim for its state.
	if st, err := sh.State(ctx, rec.ID); err == nil && st.Status == shim.StatusStopped {
		m.onShimState(st)
		return nil
	}
	return fmt.Errorf("container %s did not exit %v after SIGKILL: %w", rec.ID, killGrace, errdefs.ErrUnavailable)
}

func waitExited(ctx context.Context, c *Container, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.exited:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// Remove stops (forcibly) and deletes a container and its rootfs. Removing
// an unknown container succeeds (CRI: idempotent).
func (m *Manager) Remove(ctx context.Context, id string) error {
	c, err := m.getForTeardown(id)
	if c == nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := m.stopLocked(ctx, c, 0); err != nil {
		return err
	}
	rec := c.Record()
	if sh, err := m.shims.lookup(rec.SandboxID); err == nil {
		if err := sh.Delete(ctx, rec.ID); err != nil {
			return err
		}
	} else if err := m.reapOrphan(ctx, rec.ID); err != nil {
		// An exited container of a dead shim keeps its runtime state.
		return err
	}
	if err := m.opts.Rootfs.ReleaseRootfs(rec.Dir); err != nil {
		return err
	}
	if err := removeDir(rec.Dir); err != nil {
		return err
	}
	if err := m.opts.DB.Delete(bucket, rec.ID); err != nil {
		return err
	}
	if m.sampler != nil {
		m.sampler.Untrack(rec.ID)
	}
	m.mu.Lock()
	delete(m.containers, rec.ID)
	key := nameKey(rec.SandboxID, rec.Config.GetMetadata())
	if m.names[key] == rec.ID {
		delete(m.names, key)
	}
	if p := m.pending[key]; p != nil && p.id == rec.ID { // parked, never taken
		delete(m.pending, key)
	}
	m.mu.Unlock()
	m.events.Publish(Event{Type: EventDeleted, ContainerID: rec.ID, SandboxID: rec.SandboxID, At: now()})
	return nil
}

// StopAll stops every container of a sandbox (StopPodSandbox).
func (m *Manager) StopAll(ctx context.Context, sandboxID string, timeout time.Duration) error {
	return m.eachOfPod(sandboxID, func(id string) error { return m.Stop(ctx, id, timeout) })
}

// eachOfPod runs fn for every container of a pod at once: each waits on its
// own runtime calls, and a pod's teardown should cost its slowest container,
// not their sum.
func (m *Manager) eachOfPod(sandboxID string, fn func(id string) error) error {
	var ids []string
	for _, r := range m.ListSandbox(sandboxID) {
		ids = append(ids, r.ID)
	}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { errs[i] = fn(id) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// RemoveAll removes every container of a sandbox and ends its shim
// (RemovePodSandbox).
func (m *Manager) RemoveAll(ctx context.Context, sandboxID string) error {
	if err := m.waitCreates(ctx, sandboxID); err != nil {
		return err
	}
	if err := m.eachOfPod(sandboxID, func(id string) error { return m.Remove(ctx, id) }); err != nil {
		return err
	}
	if err := m.StopInfra(ctx, sandboxID); err != nil {
		return err
	}
	m.ForgetPod(sandboxID)
	return m.shims.shutdown(ctx, sandboxID)
}

// onShimState records what a shim reports: an exit, durably, then the event.
func (m *Manager) onShimState(st shim.State) {
	if st.Status != shim.StatusStopped {
		return
	}
	m.mu.RLock()
	c, ok := m.containers[st.ID]
	m.mu.RUnlock()
	if !ok {
		return
	}
	exited, err := c.update(m.save, func(r *Record) {
		if r.State == StateExited {
			return
		}
		r.State, r.ExitCode, r.Reason, r.Message = StateExited, st.ExitCode, st.Reason, st.Message
		r.FinishedAt = st.ExitedAt.UnixNano()
		if st.ExitedAt.IsZero() {
			r.FinishedAt = now()
		}
		if r.StartedAt == 0 && !st.StartedAt.IsZero() {
			r.StartedAt = st.StartedAt.UnixNano()
		}
	})
	if err != nil {
		klog.ErrorS(err, "Recording container exit failed", "containerID", st.ID)
		return
	}
	if exited {
		r := c.Record()
		klog.InfoS("Container exited", "containerID", r.ID, "exitCode", r.ExitCode, "reason", r.Reason)
		m.events.Publish(Event{Type: EventStopped, ContainerID: r.ID, SandboxID: r.SandboxID, At: now()})
	}
}

// markGone records a container whose shim vanished as exited.
func (m *Manager) markGone(c *Container, why string) error {
	exited, err := c.update(m.save, func(r *Record) {
		if r.State != StateExited {
			r.State, r.ExitCode, r.Reason, r.Message, r.FinishedAt = StateExited, 255, "Unknown", why, now()
		}
	})
	if exited {
		r := c.Record()
		m.events.Publish(Event{Type: EventStopped, ContainerID: r.ID, SandboxID: r.SandboxID, At: now()})
	}
	return err
}
