package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
)

// criuProbe runs `criu check` once: checkpoint/restore is offered only when
// CRIU says this kernel supports it, and otherwise refused with CRIU's own
// reason, never faked.
var criuProbe = sync.OnceValue(func() error {
	path, err := exec.LookPath("criu")
	if err != nil {
		return fmt.Errorf("checkpoint/restore needs CRIU, which is not installed: %w", errdefs.ErrFailedPrecondition)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "check").CombinedOutput()
	if err != nil {
		return fmt.Errorf("checkpoint/restore is unavailable on this host: criu check: %s: %w", lastLine(out, err), errdefs.ErrFailedPrecondition)
	}
	return nil
})

func lastLine(out []byte, err error) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if l := lines[len(lines)-1]; l != "" {
		return l
	}
	return err.Error()
}

// CheckpointContainer validates the request, then refuses it with CRIU's
// reason when this host cannot checkpoint.
func (m *Manager) CheckpointContainer(ctx context.Context, id, location string) error {
	if location == "" {
		return fmt.Errorf("location: required: %w", errdefs.ErrInvalidArgument)
	}
	c, err := m.Get(id)
	if err != nil {
		return err
	}
	if st := c.Record().State; st != StateRunning {
		return fmt.Errorf("container %s is %s, not RUNNING: %w", id, st, errdefs.ErrFailedPrecondition)
	}
	if err := criuProbe(); err != nil {
		return err
	}
	return fmt.Errorf("container checkpoint with CRIU: %w", errdefs.ErrNotImplemented)
}

// CheckpointPod validates that output_path is an existing empty directory,
// then refuses with CRIU's reason when this host cannot checkpoint.
func (m *Manager) CheckpointPod(ctx context.Context, sandboxID, outputPath string) error {
	if outputPath == "" {
		return fmt.Errorf("output_path: required: %w", errdefs.ErrInvalidArgument)
	}
	entries, err := os.ReadDir(outputPath)
	if err != nil {
		return fmt.Errorf("output_path %q: %v: %w", outputPath, err, errdefs.ErrInvalidArgument)
	}
	if len(entries) > 0 {
		return fmt.Errorf("output_path %q is not empty: %w", outputPath, errdefs.ErrInvalidArgument)
	}
	if err := criuProbe(); err != nil {
		return err
	}
	return fmt.Errorf("pod checkpoint with CRIU: %w", errdefs.ErrNotImplemented)
}

// RestorePod validates the checkpoint path, then refuses with CRIU's reason
// when this host cannot restore.
func (m *Manager) RestorePod(ctx context.Context, path string) error {
	if path == "" {
		return fmt.Errorf("path: required: %w", errdefs.ErrInvalidArgument)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("path %q: %w", path, errdefs.ErrNotFound)
	}
	if err := criuProbe(); err != nil {
		return err
	}
	return fmt.Errorf("pod restore with CRIU: %w", errdefs.ErrNotImplemented)
}
