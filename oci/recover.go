package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/oci/shim"
)

// recover rebuilds memory from the records before the daemon serves.
// Invariants afterwards:
//   - a running container is untouched and reported RUNNING;
//   - a container that exited while the daemon was away reports its exit
//     code (the shim recorded it durably);
//   - a container whose shim is gone is EXITED with reason "Unknown";
//   - a record of a create the daemon never finished is removed with its
//     rootfs, and bundles no record owns are removed.
func (m *Manager) recover(ctx context.Context) error {
	recs, err := m.loadRecords()
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Creating {
			m.discard(ctx, r)
			continue
		}
		c := newContainer(r, loadProcess(r.Dir))
		m.containers[r.ID] = c
		m.track(r)
		m.names[nameKey(r.SandboxID, r.Config.GetMetadata())] = r.ID
	}
	m.reconcileShims(ctx)
	return m.collectBundles()
}

func (m *Manager) loadRecords() ([]Record, error) {
	var recs []Record
	err := m.opts.DB.ForEach(bucket, func(_ string, raw []byte) error {
		var r Record
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode container record: %w", err)
		}
		recs = append(recs, r)
		return nil
	})
	return recs, err
}

// reconcileShims reconnects to each pod's shim and settles its containers'
// states from what the shim (or its exit records) says.
func (m *Manager) reconcileShims(ctx context.Context) {
	bySandbox := map[string][]*Container{}
	for _, c := range m.containers {
		r := c.Record()
		bySandbox[r.SandboxID] = append(bySandbox[r.SandboxID], c)
	}
	for sandboxID, cs := range bySandbox {
		states := map[string]shim.State{}
		sh, err := m.shims.reconnect(ctx, sandboxID)
		gone := errdefs.IsNotFound(err)
		if err == nil {
			list, err := sh.States(ctx)
			if err == nil {
				for _, st := range list {
					states[st.ID] = st
				}
			}
		} else if recs, err := shim.ExitRecords(m.shims.shimDir(sandboxID)); err == nil {
			// The shim is gone but left the exits it recorded.
			for _, st := range recs {
				states[st.ID] = st
			}
		}
		for _, c := range cs {
			m.settle(ctx, c, states, gone)
		}
	}
}

// settle sets a container's state from its shim's report. shimGone says
// the shim is dead (not merely unreachable): its running containers are
// orphans, killed as orphans.go explains.
func (m *Manager) settle(ctx context.Context, c *Container, states map[string]shim.State, shimGone bool) {
	r := c.Record()
	if r.State == StateExited {
		return
	}
	st, ok := states[r.ID]
	switch {
	case !ok && shimGone:
		m.settleOrphan(ctx, c, "the container's shim is gone")
	case !ok:
		if err := m.markGone(c, "the container's shim is gone"); err != nil {
			klog.ErrorS(err, "Recording lost container failed", "containerID", r.ID)
		}
	case st.Status == shim.StatusStopped:
		m.onShimState(st)
	case st.Status == shim.StatusRunning && r.State == StateCreated:
		// Started just before the crash, recorded only by the shim.
		_, _ = c.update(m.save, func(rec *Record) { rec.State, rec.StartedAt = StateRunning, st.StartedAt.UnixNano() })
	}
}

// discard undoes a create that a crash interrupted.
func (m *Manager) discard(ctx context.Context, r Record) {
	if sh, err := m.shims.reconnect(ctx, r.SandboxID); err == nil {
		_ = sh.Delete(ctx, r.ID)
	}
	err := errors.Join(m.opts.Rootfs.ReleaseRootfs(r.Dir), removeDir(r.Dir), m.opts.DB.Delete(bucket, r.ID))
	if err != nil {
		klog.ErrorS(err, "Discarding interrupted container create failed", "containerID", r.ID)
	}
}

// collectBundles removes container directories that no record owns.
func (m *Manager) collectBundles() error {
	dir := filepath.Join(m.opts.Root, "containers")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if _, ok := m.containers[e.Name()]; ok {
			continue
		}
		p := filepath.Join(dir, e.Name())
		errs = append(errs, m.opts.Rootfs.ReleaseRootfs(p), removeDir(p))
	}
	return errors.Join(errs...)
}

// loadProcess reads the process of a bundle's spec, the template for exec.
func loadProcess(dir string) *specs.Process {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil
	}
	var s specs.Spec
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	return s.Process
}

// removeDir removes a bundle after its rootfs is unmounted. It refuses to
// descend into a still-mounted rootfs: RemoveAll would delete the image.
func removeDir(dir string) error {
	if err := os.Remove(filepath.Join(dir, "rootfs")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove rootfs mountpoint (still mounted?): %w", err)
	}
	return os.RemoveAll(dir)
}
