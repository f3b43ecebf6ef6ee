package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/containerd/errdefs"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/nodeagent/nodeagent/internal/faults"
	"github.com/nodeagent/nodeagent/internal/nsutil"
	"github.com/nodeagent/nodeagent/internal/podnet"
)

// Get returns the sandbox with this id or unique id prefix.
func (m *Manager) Get(id string) (*Sandbox, error) {
	if id == "" {
		return nil, fmt.Errorf("pod_sandbox_id: required: %w", errdefs.ErrInvalidArgument)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if sb, ok := m.sandboxes[id]; ok {
		return sb, nil
	}
	var found *Sandbox
	for full, sb := range m.sandboxes {
		if strings.HasPrefix(full, id) {
			if found != nil {
				return nil, fmt.Errorf("sandbox id prefix %q is ambiguous: %w", id, errdefs.ErrInvalidArgument)
			}
			found = sb
		}
	}
	if found == nil {
		return nil, fmt.Errorf("sandbox %q: %w", id, errdefs.ErrNotFound)
	}
	return found, nil
}

// List returns the records of every sandbox, from memory, newest first.
func (m *Manager) List() []Record {
	m.mu.RLock()
	out := make([]Record, 0, len(m.sandboxes))
	for _, sb := range m.sandboxes {
		out = append(out, sb.Record())
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt > out[j].CreatedAt })
	return out
}

// Stop releases the sandbox's network (CNI DEL with the stored result) and
// marks it NOTREADY. The caller stops the sandbox's containers first.
// CRI: "If there are any running containers in the sandbox, they must be
// forcibly terminated... the call is idempotent": an unknown id is success.
func (m *Manager) Stop(ctx context.Context, id string) error {
	sb, err := m.getForTeardown(id)
	if sb == nil {
		return err
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	return m.stopLocked(ctx, sb)
}

// getForTeardown is Get for Stop and Remove: an unknown sandbox is (nil,
// nil), as both must succeed for it.
func (m *Manager) getForTeardown(id string) (*Sandbox, error) {
	sb, err := m.Get(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, nil
	}
	return sb, err
}

func (m *Manager) stopLocked(ctx context.Context, sb *Sandbox) error {
	rec := sb.Record()
	if rec.Networked {
		// NOTREADY is saved before DEL: a crash or a failed DEL leaves a
		// NOTREADY sandbox that is still Networked, which Stop (retried)
		// and recovery finish; never a READY one whose network is gone.
		if rec.State != StateNotReady {
			if err := sb.update(m.save, func(r *Record) { r.State, r.Message = StateNotReady, "stopping" }); err != nil {
				return err
			}
		}
		if err := m.network.Detach(ctx, rec.Network.Network, m.netRequest(rec)); err != nil {
			return err
		}
		faults.Point("sandbox/stop-after-cni-del")
	}
	return sb.update(m.save, func(r *Record) {
		r.State, r.Networked, r.Message = StateNotReady, false, ""
		r.Network.Raw = nil
	})
}

// Remove stops the sandbox if needed, unpins its namespaces, removes its files
// and forgets it. The caller removes the sandbox's containers first.
// CRI: "If the sandbox has already been removed, the call is successful."
func (m *Manager) Remove(ctx context.Context, id string) error {
	sb, err := m.getForTeardown(id)
	if sb == nil {
		return err
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	if err := m.stopLocked(ctx, sb); err != nil {
		return err
	}
	rec := sb.Record()
	if err := nsutil.Unpin(rec.NSDir); err != nil {
		return err
	}
	if err := removeFiles(rec.Dir); err != nil {
		return err
	}
	if err := m.db.Delete(bucket, rec.ID); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.sandboxes, rec.ID)
	if r, ok := m.names[nameKey(rec.Config.GetMetadata())]; ok && r.id == rec.ID {
		delete(m.names, nameKey(rec.Config.GetMetadata()))
	}
	m.mu.Unlock()
	return nil
}

// recover loads every record before the daemon serves. A READY sandbox whose
// netns pin is gone (a reboot) becomes NOTREADY; a sandbox whose creation a
// crash interrupted is torn down to NOTREADY; pins and directories that no
// record owns are removed.
func (m *Manager) recover(ctx context.Context) error {
	var recs []Record
	err := m.db.ForEach(bucket, func(_ string, raw []byte) error {
		var r Record
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("decode sandbox record: %w", err)
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range recs {
		sb := &Sandbox{record: r}
		m.sandboxes[r.ID] = sb
		m.names[nameKey(r.Config.GetMetadata())] = &reservation{id: r.ID, done: closed}
		if needsTeardown(r) {
			// Best effort: Stop/Remove retry whatever fails here.
			_ = m.stopLocked(ctx, sb)
			_ = sb.update(m.save, func(rec *Record) {
				if rec.Message == "" {
					rec.Message = "namespaces lost (node rebooted?) or creation interrupted"
				}
			})
		}
		if r.State != StateReady && r.Message == msgCreating {
			// kubelet sees why and replaces the sandbox with a new attempt.
			_ = sb.update(m.save, func(rec *Record) { rec.Message = "creation interrupted by a daemon restart" })
		}
	}
	return m.collectGarbage()
}

var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func needsTeardown(r Record) bool {
	if r.State != StateReady {
		return r.Networked
	}
	return r.NetNS != "" && !nsutil.IsPinned(r.NetNS)
}

// collectGarbage removes pins and sandbox dirs that no record owns: what a
// crash between their creation and the record's deletion left behind.
func (m *Manager) collectGarbage() error {
	var errs []error
	for _, root := range []string{m.nsRoot, m.dirRoot} {
		entries, err := os.ReadDir(root)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		for _, e := range entries {
			if _, owned := m.sandboxes[e.Name()]; owned {
				continue
			}
			p := filepath.Join(root, e.Name())
			if root == m.nsRoot {
				errs = append(errs, nsutil.Unpin(p))
			} else {
				errs = append(errs, removeFiles(p))
			}
		}
	}
	return errors.Join(errs...)
}

// bandwidth reads kubelet's traffic-shaping annotations into the CNI
// bandwidth capability; unparsable values are ignored, as kubelet validates
// them at admission.
func bandwidth(ann map[string]string) *podnet.Bandwidth {
	parse := func(key string) uint64 {
		v, ok := ann[key]
		if !ok {
			return 0
		}
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Sign() <= 0 {
			return 0
		}
		return uint64(q.Value())
	}
	in, out := parse("kubernetes.io/ingress-bandwidth"), parse("kubernetes.io/egress-bandwidth")
	if in == 0 && out == 0 {
		return nil
	}
	// Burst as containerd and the bandwidth plugin's docs suggest: generous
	// enough not to throttle short bursts.
	const burst = 1 << 30
	b := &podnet.Bandwidth{}
	if in > 0 {
		b.IngressRate, b.IngressBurst = in, burst
	}
	if out > 0 {
		b.EgressRate, b.EgressBurst = out, burst
	}
	return b
}
