package stats

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"
)

// diskUsage is `du -s` of root plus an inode count: bytes are allocated
// blocks (st_blocks × 512, so sparse files count what they use), a file with
// several hard links inside the tree counts once, and the walk stays on
// root's filesystem. Entries removed while walking are skipped; a missing
// root is an error wrapping fs.ErrNotExist.
func diskUsage(root string) (bytes, inodes uint64, err error) {
	var rootDev uint64
	type inode struct{ dev, ino uint64 }
	seen := map[inode]struct{}{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil {
			var fi fs.FileInfo
			fi, err = d.Info()
			if err == nil {
				st, ok := fi.Sys().(*syscall.Stat_t)
				if !ok {
					return fmt.Errorf("stat %s: no syscall.Stat_t", p)
				}
				if p == root {
					rootDev = st.Dev
				} else if st.Dev != rootDev {
					if d.IsDir() {
						return fs.SkipDir
					}
					return nil
				}
				if !d.IsDir() && st.Nlink > 1 {
					key := inode{st.Dev, st.Ino}
					if _, dup := seen[key]; dup {
						return nil
					}
					seen[key] = struct{}{}
				}
				bytes += uint64(st.Blocks) * 512
				inodes++
				return nil
			}
		}
		// The container keeps writing while we walk.
		if p != root && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("disk usage of %s: %w", root, err)
	}
	return bytes, inodes, nil
}
