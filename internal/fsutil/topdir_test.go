package fsutil

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func flags(t *testing.T, dir string) (int, bool) {
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := unix.IoctlGetInt(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	return v, err == nil
}

func TestMarkTopDir(t *testing.T) {
	dir := t.TempDir()
	before, supported := flags(t, dir)
	if err := MarkTopDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := MarkTopDir(dir); err != nil { // idempotent
		t.Fatal(err)
	}
	if !supported {
		t.Logf("%s: no inode flags on this file system; MarkTopDir is a no-op", dir)
		return
	}
	after, _ := flags(t, dir)
	if after != before|topDirFlag {
		t.Errorf("flags %#x -> %#x, want %#x", before, after, before|topDirFlag)
	}
	if err := MarkTopDir(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("missing dir: %v", err)
	}
}

// A file system without inode flags (tmpfs, when root can mount one) is
// not an error.
func TestMarkTopDirUnsupported(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	if err := MarkTopDir(dir); err != nil {
		t.Errorf("tmpfs: %v", err)
	}
}
