package oci

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/oci/runtime"
	"github.com/nodeagent/nodeagent/oci/spec"
)

// UpdateResources applies new limits to a container's cgroup synchronously,
// then persists them so ContainerStatus reports them (kubelet's in-place
// resize reads them back).
func (m *Manager) UpdateResources(ctx context.Context, id string, res *runtimeapi.LinuxContainerResources) error {
	if res == nil {
		return fmt.Errorf("linux: required: %w", errdefs.ErrInvalidArgument)
	}
	c, err := m.Get(id)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rec := c.Record()
	if rec.State == StateExited {
		return fmt.Errorf("container %s has exited: %w", rec.ID, errdefs.ErrFailedPrecondition)
	}
	h, err := m.Handler(rec.Handler)
	if err != nil {
		return err
	}
	limits, err := spec.Resources(res, m.opts.Host)
	if err != nil {
		return err
	}
	if rec.State == StateCreated {
		// The runtime gets the container at StartContainer, from its
		// bundle: the new limits go there.
		if err := updateBundle(rec.Dir, limits); err != nil {
			return err
		}
	} else if err := runtime.New(h.Path, m.runtimeRoot(h)).Update(ctx, rec.ID, limits); err != nil {
		return err
	}
	_, err = c.update(m.save, func(r *Record) { r.Resources = res })
	return err
}

// runtimeRoot is a handler's runtime state directory (its --root).
func (m *Manager) runtimeRoot(h Handler) string {
	return Layout{m.opts.State}.RuntimeRoot(h.Name)
}

// updateBundle sets new limits in a created container's config.json.
func updateBundle(dir string, limits *specs.LinuxResources) error {
	raw, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return fmt.Errorf("read spec: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("decode spec: %w", err)
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	if s.Linux.Resources == nil {
		s.Linux.Resources = &specs.LinuxResources{}
	}
	if err := spec.WithResources(limits)(&s); err != nil {
		return err
	}
	return writeSpec(dir, &s)
}
