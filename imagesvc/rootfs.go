package imagesvc

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/nodeagent/nodeagent/imagesvc/overlay"
)

// PrepareRootfs mounts a container's root filesystem under dir: the image's
// snapshots as overlay lowers, with dir/upper and dir/work as the container's
// own writable layer, at dir/rootfs.
func (s *Service) PrepareRootfs(imageID, dir string) (string, error) {
	lowers, err := s.Lowers(imageID)
	if err != nil {
		return "", err
	}
	upper, work, rootfs := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "rootfs")
	for _, d := range []string{upper, work, rootfs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("create rootfs dirs: %w", err)
		}
	}
	if err := overlay.Mount(rootfs, lowers, upper, work); err != nil {
		return "", fmt.Errorf("mount container rootfs: %w", err)
	}
	return rootfs, nil
}

// ReleaseRootfs unmounts a rootfs PrepareRootfs mounted; not mounted is
// success, so removal can be retried.
func (s *Service) ReleaseRootfs(dir string) error {
	return overlay.Unmount(filepath.Join(dir, "rootfs"))
}
