package oci

import (
	"context"
	"errors"
	"time"

	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/oci/runtime"
)

// A container's shim is its parent, reaper and log writer. When the shim
// dies (SIGKILL, OOM, crash) its containers keep running, reparented to the
// host's init, with nobody to reap them, log their output or report their
// exit. Like containerd after a dead shim, nodeagent then kills them and
// deletes their runtime state, and records them as exited with reason
// "Unknown": reporting EXITED for a process that still runs would be a lie,
// and kubelet restarts them under a new shim.
//
// The pod's infra (pause) process is left running: it holds the pod's PID
// namespace, which the restarted containers join. StopInfra reaps it.

// shimDied settles the containers of a pod whose shim died while the daemon
// followed it.
func (m *Manager) shimDied(sandboxID string) {
	klog.InfoS("Shim died: killing its orphaned containers", "podSandboxID", sandboxID)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var cs []*Container
	m.mu.RLock()
	for _, c := range m.containers {
		// A create still running is its creator's to finish or undo: on
		// the dead shim it fails, on a new one it must not be killed.
		if r := c.Record(); r.SandboxID == sandboxID && !r.Creating {
			cs = append(cs, c)
		}
	}
	m.mu.RUnlock()
	for _, c := range cs {
		m.settleOrphan(ctx, c, "the container's shim died")
	}
}

// settleOrphan kills a container whose shim is gone and records it exited.
func (m *Manager) settleOrphan(ctx context.Context, c *Container, why string) {
	r := c.Record()
	if err := m.reapOrphan(ctx, r.ID); err != nil {
		klog.ErrorS(err, "Killing orphaned container failed", "containerID", r.ID)
	}
	if err := m.markGone(c, why); err != nil {
		klog.ErrorS(err, "Recording lost container failed", "containerID", r.ID)
	}
}

// reapOrphan kills a container that a runtime still knows but no shim owns
// and deletes its runtime state. A container no runtime knows is success.
func (m *Manager) reapOrphan(ctx context.Context, id string) error {
	var errs []error
	for _, h := range m.opts.Handlers {
		if h.Err != nil {
			continue
		}
		rt := runtime.New(h.Path, m.runtimeRoot(h))
		ok, err := rt.Exists(id)
		if err == nil && ok {
			err = rt.Delete(ctx, id)
		}
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
