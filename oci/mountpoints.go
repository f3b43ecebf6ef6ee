package oci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ensureMountpoints creates, as the host's root, the missing targets of the
// spec's bind mounts. In a user-namespace pod root inside the container cannot
// create them in image directories the host's root owns; elsewhere it merely
// does what runc would. The image is untrusted: os.Root keeps every lookup,
// symlinks included, inside the rootfs.
func ensureMountpoints(rootfs string, mounts []specs.Mount) error {
	root, err := os.OpenRoot(rootfs)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer root.Close()
	for _, m := range mounts {
		if m.Type != "bind" && !containsOption(m.Options, "bind", "rbind") {
			continue
		}
		if err := ensureMountpoint(root, m); err != nil {
			return fmt.Errorf("create mountpoint %s: %w", m.Destination, err)
		}
	}
	return nil
}

func ensureMountpoint(root *os.Root, m specs.Mount) error {
	rel := strings.TrimPrefix(filepath.Clean("/"+m.Destination), "/")
	if rel == "" {
		return nil
	}
	if _, err := root.Lstat(rel); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return nil // present (or unusable: runc will say why)
	}
	src, err := os.Stat(m.Source)
	if err != nil {
		return nil // runc reports a missing source
	}
	if err := root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return err
	}
	if src.IsDir() {
		return root.Mkdir(rel, 0o755)
	}
	f, err := root.OpenFile(rel, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

func containsOption(opts []string, want ...string) bool {
	for _, o := range opts {
		for _, w := range want {
			if o == w {
				return true
			}
		}
	}
	return false
}
