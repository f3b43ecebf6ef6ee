package stats

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// deviceNames caches BlockDeviceName: block devices come and go rarely, and
// a name is asked for on every metrics scrape.
var deviceNames sync.Map // "major:minor" -> "/dev/name"

// BlockDeviceName returns the /dev path of a block device from sysfs
// (/sys/dev/block/MAJOR:MINOR links to the device's directory, named as the
// device), or "MAJOR:MINOR" when sysfs does not know it.
func BlockDeviceName(major, minor uint64) string {
	key := fmt.Sprintf("%d:%d", major, minor)
	if v, ok := deviceNames.Load(key); ok {
		return v.(string)
	}
	name := key
	if target, err := os.Readlink(filepath.Join("/sys/dev/block", key)); err == nil {
		name = "/dev/" + filepath.Base(target)
		deviceNames.Store(key, name) // a miss is not cached: the device may appear
	}
	return name
}

// FilesystemSize is the size of the filesystem holding a path.
type FilesystemSize struct {
	CapacityBytes      uint64
	Inodes, FreeInodes uint64
}

// Filesystem returns the size of the filesystem holding path (statfs).
func Filesystem(path string) (FilesystemSize, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return FilesystemSize{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return FilesystemSize{
		CapacityBytes: st.Blocks * bs, Inodes: st.Files, FreeInodes: st.Ffree,
	}, nil
}
