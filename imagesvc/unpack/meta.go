package unpack

import (
	"archive/tar"
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

const paxXattr = "SCHILY.xattr."

// perm is the permission and set-ID part of the header mode; tar uses the
// same bit values as Linux.
func perm(hdr *tar.Header) uint32 { return uint32(hdr.Mode) & 0o7777 }

// checkOwner refuses ids chown(2) cannot take: -1 (0xffffffff) means
// "unchanged" to the kernel and would silently leave root ownership.
func checkOwner(hdr *tar.Header) error {
	const maxID = 1<<32 - 2
	if hdr.Uid < 0 || hdr.Uid > maxID || hdr.Gid < 0 || hdr.Gid > maxID {
		return fmt.Errorf("owner %d:%d out of range: %w", hdr.Uid, hdr.Gid, errdefs.ErrInvalidArgument)
	}
	return nil
}

// needChown: files we create are root:root already, unless the directory is
// set-group-ID (then they take its group).
func needChown(hdr *tar.Header, parent dirent) bool {
	return hdr.Uid != 0 || hdr.Gid != 0 || parent.sgid
}

// needChmod says whether the mode given at creation survived: the umask
// strips bits, mkdir ignores set-ID bits, chown clears them on non-directories,
// and a set-group-ID parent forces the bit onto new directories.
func (u *unpacker) needChmod(hdr *tar.Header, chowned bool, parent dirent) bool {
	p := perm(hdr)
	const setID = unix.S_ISUID | unix.S_ISGID
	if p&u.umask != 0 {
		return true
	}
	if hdr.Typeflag == tar.TypeDir {
		return p&setID != 0 || (parent.sgid && p&unix.S_ISGID == 0)
	}
	return chowned && p&setID != 0
}

// fileMeta sets owner, mode, xattrs and times of a regular file through its
// descriptor: in that order, because chown clears set-ID bits and file
// capabilities.
func (u *unpacker) fileMeta(fd int, n node) error {
	chowned := needChown(n.hdr, n.parent)
	if chowned {
		if err := unix.Fchown(fd, n.hdr.Uid, n.hdr.Gid); err != nil {
			return wrap("chown", err)
		}
	}
	if u.needChmod(n.hdr, chowned, n.parent) {
		if err := unix.Fchmod(fd, perm(n.hdr)); err != nil {
			return wrap("chmod", err)
		}
	}
	if err := setXattrs(fd, n.hdr, false); err != nil {
		return err
	}
	return wrap("set times", futimens(fd, times(n.hdr)))
}

// pathMeta sets owner, mode and (for non-directories) xattrs of an entry by
// name. kept is an existing directory reused for this entry, whose metadata
// is whatever an earlier entry gave it.
func (u *unpacker) pathMeta(n node, kept bool) error {
	chowned := kept || needChown(n.hdr, n.parent)
	if chowned {
		if err := unix.Fchownat(n.parent.fd, n.base, n.hdr.Uid, n.hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return wrap("chown", err)
		}
	}
	link := n.hdr.Typeflag == tar.TypeSymlink
	// fchmodat follows symlinks, so it is only used on what we just made
	// (or kept) as a non-symlink; symlink modes mean nothing on Linux.
	if !link && (kept || u.needChmod(n.hdr, chowned, n.parent)) {
		if err := unix.Fchmodat(n.parent.fd, n.base, perm(n.hdr), 0); err != nil {
			return wrap("chmod", err)
		}
	}
	if n.hdr.Typeflag == tar.TypeDir || xattrs(n.hdr) == nil {
		return nil
	}
	return setXattrs(-1, &tar.Header{PAXRecords: n.hdr.PAXRecords, Name: procPath(n.parent.fd, n.base)}, true)
}

// xattrs returns the header's extended attributes that may be set. trusted.*
// (and so trusted.overlay.*) is dropped: an image must not forge overlayfs
// metadata such as redirects; opaque directories come only from whiteouts.
func xattrs(hdr *tar.Header) map[string]string {
	var out map[string]string
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok || !allowedXattr(name) {
			continue
		}
		if out == nil {
			out = make(map[string]string)
		}
		out[name] = v
	}
	return out
}

func allowedXattr(name string) bool {
	return strings.HasPrefix(name, "user.") || strings.HasPrefix(name, "security.") ||
		name == "system.posix_acl_access" || name == "system.posix_acl_default"
}

// setXattrs sets the header's xattrs on fd, or with byPath on the path in
// hdr.Name (symlinks and device nodes have no usable descriptor). Filesystems
// or node types that cannot hold an attribute are not an image error.
func setXattrs(fd int, hdr *tar.Header, byPath bool) error {
	for name, value := range xattrs(hdr) {
		var err error
		if byPath {
			err = unix.Lsetxattr(hdr.Name, name, []byte(value), 0)
		} else {
			err = unix.Fsetxattr(fd, name, []byte(value), 0)
		}
		if err == unix.ENOTSUP || (byPath && err == unix.EPERM) {
			continue
		}
		if err != nil {
			return wrap("set xattr "+name, err)
		}
	}
	return nil
}

func times(hdr *tar.Header) [2]unix.Timespec {
	m := unix.Timespec{Sec: hdr.ModTime.Unix(), Nsec: int64(hdr.ModTime.Nanosecond())}
	a := m
	if !hdr.AccessTime.IsZero() {
		a = unix.Timespec{Sec: hdr.AccessTime.Unix(), Nsec: int64(hdr.AccessTime.Nanosecond())}
	}
	return [2]unix.Timespec{a, m}
}

func tsSlice(ts [2]unix.Timespec) []unix.Timespec { return ts[:] }

// futimens is utimensat(fd, NULL, ts, 0): x/sys only offers a /proc path
// walk for descriptors, an extra lookup per file.
func futimens(fd int, ts [2]unix.Timespec) error {
	_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}

var umaskOnce = sync.OnceValue(readUmask)

func processUmask() uint32 { return umaskOnce() }

// readUmask reads the umask without umask(2), which would change it for
// every thread of the daemon while it is read.
func readUmask() uint32 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0o022
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return uint32(m)
			}
		}
	}
	return 0o022
}

func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", op, err)
}
