package unpack

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

const blockSize = 4096

// Linux dev_t as mknod(2) takes it: 12-bit major, 20-bit minor.
const (
	maxMajor = 1<<12 - 1
	maxMinor = 1<<20 - 1
)

type unpacker struct {
	t     *tree
	opts  Options
	umask uint32
	buf   []byte
	res   Result
	dirs  []dirTime // directory mtimes, set last: creating children changes them
}

type dirTime struct {
	rel string
	ts  [2]unix.Timespec
}

func newUnpacker(t *tree, opts Options) *unpacker {
	return &unpacker{t: t, opts: opts, umask: processUmask(), buf: make([]byte, 256<<10)}
}

// cleanName maps a tar name into the tree: absolute names are taken as
// relative to the root (contained, as GNU tar and containerd do); names that
// climb above the root with ".." are refused. "" is the root itself.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("name contains NUL: %w", errdefs.ErrInvalidArgument)
	}
	p := path.Clean(name)
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("path escapes the layer root: %w", errdefs.ErrInvalidArgument)
	}
	p = strings.TrimLeft(p, "/")
	if p == "." {
		p = ""
	}
	return p, nil
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	u.t.trim()
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if err := checkOwner(hdr); err != nil {
		return err
	}
	if rel == "" {
		return u.rootEntry(hdr)
	}
	parentRel, base := parentOf(rel), path.Base(rel)
	kind, target := classifyWhiteout(base)
	switch kind {
	case whiteoutIgnored:
		return nil
	case whiteoutOpaqueDir:
		d, err := u.t.dir(parentRel)
		if err != nil {
			return err
		}
		return wrap("mark opaque", makeOpaque(d.fd))
	case whiteoutFile:
		return u.whiteout(parentRel, target)
	}
	parent, err := u.t.dir(parentRel)
	if err != nil {
		return err
	}
	n := node{parent: parent, parentRel: parentRel, rel: rel, base: base, hdr: hdr}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.directory(n)
	case tar.TypeReg, tar.TypeRegA:
		return u.regular(n, r)
	case tar.TypeSymlink:
		return u.symlink(n)
	case tar.TypeLink:
		return u.hardlink(n)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return u.special(n)
	case tar.TypeXGlobalHeader:
		return nil
	}
	return fmt.Errorf("unsupported tar entry type %q: %w", hdr.Typeflag, errdefs.ErrInvalidArgument)
}

// node is one entry being created: base inside the open directory parent.
type node struct {
	parent    dirent
	parentRel string
	rel, base string
	hdr       *tar.Header
}

// create runs mk; if the name exists it is replaced, except that an
// existing directory is kept for a directory entry (tars may repeat them).
// It reports whether an existing directory was kept.
func (u *unpacker) create(n node, mk func() error) (kept bool, err error) {
	err = mk()
	if err != unix.EEXIST {
		return false, wrap("create", err)
	}
	if n.hdr.Typeflag == tar.TypeDir {
		var st unix.Stat_t
		if err := unix.Fstatat(n.parent.fd, n.base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return true, nil
		}
	}
	if err := removeAt(n.parent.fd, n.base); err != nil {
		return false, err
	}
	u.t.flushExcept(n.parentRel)
	return false, wrap("create", mk())
}

func (u *unpacker) whiteout(parentRel, target string) error {
	if target == "" || target == "." || target == ".." {
		return fmt.Errorf("whiteout names nothing: %w", errdefs.ErrInvalidArgument)
	}
	parent, err := u.t.dir(parentRel)
	if err != nil {
		return err
	}
	n := node{parent: parent, parentRel: parentRel, rel: path.Join(parentRel, target), base: target, hdr: &tar.Header{}}
	if _, err := u.create(n, func() error { return makeWhiteout(parent.fd, target) }); err != nil {
		return err
	}
	u.res.Inodes++
	return nil
}

func (u *unpacker) regular(n node, r io.Reader) error {
	if n.hdr.Size < 0 || (u.opts.MaxBytes > 0 && n.hdr.Size > u.opts.MaxBytes) {
		return fmt.Errorf("file size %d out of range: %w", n.hdr.Size, errdefs.ErrResourceExhausted)
	}
	var fd int
	_, err := u.create(n, func() (err error) {
		fd, err = unix.Openat(n.parent.fd, n.base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm(n.hdr))
		return err
	})
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := u.copyData(fd, r, n.hdr.Size); err != nil {
		return err
	}
	if err := u.fileMeta(fd, n); err != nil {
		return err
	}
	u.res.Size += n.hdr.Size
	u.res.Usage += (n.hdr.Size + blockSize - 1) / blockSize * blockSize
	u.res.Inodes++
	return nil
}

// copyData writes exactly size bytes of r to fd with plain write(2)s: no
// os.File, no poller registration, one buffer reused for every file.
func (u *unpacker) copyData(fd int, r io.Reader, size int64) error {
	for size > 0 {
		chunk := u.buf
		if int64(len(chunk)) > size {
			chunk = chunk[:size]
		}
		got, err := io.ReadFull(r, chunk)
		if err != nil {
			return fmt.Errorf("read file data: %w", err)
		}
		for off := 0; off < got; {
			w, err := unix.Write(fd, chunk[off:got])
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return wrap("write", err)
			}
			off += w
		}
		size -= int64(got)
	}
	return nil
}

func (u *unpacker) directory(n node) error {
	kept, err := u.create(n, func() error { return unix.Mkdirat(n.parent.fd, n.base, perm(n.hdr)) })
	if err != nil {
		return err
	}
	if err := u.pathMeta(n, kept); err != nil {
		return err
	}
	if xattrs(n.hdr) != nil {
		d, err := u.t.dir(n.rel)
		if err != nil {
			return err
		}
		if err := setXattrs(d.fd, n.hdr, false); err != nil {
			return err
		}
	}
	u.dirs = append(u.dirs, dirTime{rel: n.rel, ts: times(n.hdr)})
	if !kept {
		u.res.Usage += blockSize
		u.res.Inodes++
	}
	return nil
}

func (u *unpacker) rootEntry(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("layer root is not a directory: %w", errdefs.ErrInvalidArgument)
	}
	fd := u.t.root
	if err := wrap("chown root", unix.Fchown(fd, hdr.Uid, hdr.Gid)); err != nil {
		return err
	}
	if err := wrap("chmod root", unix.Fchmod(fd, perm(hdr))); err != nil {
		return err
	}
	if err := setXattrs(fd, hdr, false); err != nil {
		return err
	}
	u.dirs = append(u.dirs, dirTime{rel: "", ts: times(hdr)})
	return nil
}

// symlink targets are stored verbatim: they are only ever resolved inside
// the container's root, and this package resolves paths with
// RESOLVE_IN_ROOT, so an outward target cannot reach the host.
func (u *unpacker) symlink(n node) error {
	if _, err := u.create(n, func() error { return unix.Symlinkat(n.hdr.Linkname, n.parent.fd, n.base) }); err != nil {
		return err
	}
	if err := u.pathMeta(n, false); err != nil {
		return err
	}
	u.res.Inodes++
	return wrap("set times", unix.UtimesNanoAt(n.parent.fd, n.base, tsSlice(times(n.hdr)), unix.AT_SYMLINK_NOFOLLOW))
}

// hardlink links to an entry of this layer. The target is resolved inside
// the tree like any name; linkat without AT_SYMLINK_FOLLOW links a symlink
// itself, never what it points to.
func (u *unpacker) hardlink(n node) error {
	target, err := cleanName(n.hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	if target == "" {
		return fmt.Errorf("hard link to the layer root: %w", errdefs.ErrInvalidArgument)
	}
	tfd, err := openInRoot(u.t.root, parentOf(target))
	if err != nil {
		return fmt.Errorf("hard link target %q is not in this layer: %w", n.hdr.Linkname, err)
	}
	defer unix.Close(tfd)
	_, err = u.create(n, func() error { return unix.Linkat(tfd, path.Base(target), n.parent.fd, n.base, 0) })
	if errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("hard link target %q is not in this layer: %w", n.hdr.Linkname, err)
	}
	return err
}

func (u *unpacker) special(n node) error {
	mode := perm(n.hdr)
	dev := 0
	switch n.hdr.Typeflag {
	case tar.TypeFifo:
		mode |= unix.S_IFIFO
	case tar.TypeChar, tar.TypeBlock:
		if n.hdr.Devmajor < 0 || n.hdr.Devmajor > maxMajor || n.hdr.Devminor < 0 || n.hdr.Devminor > maxMinor {
			return fmt.Errorf("device %d:%d out of range: %w", n.hdr.Devmajor, n.hdr.Devminor, errdefs.ErrInvalidArgument)
		}
		mode |= unix.S_IFCHR
		if n.hdr.Typeflag == tar.TypeBlock {
			mode = perm(n.hdr) | unix.S_IFBLK
		}
		dev = int(unix.Mkdev(uint32(n.hdr.Devmajor), uint32(n.hdr.Devminor)))
	}
	if _, err := u.create(n, func() error { return unix.Mknodat(n.parent.fd, n.base, mode, dev) }); err != nil {
		return err
	}
	if err := u.pathMeta(n, false); err != nil {
		return err
	}
	u.res.Inodes++
	return wrap("set times", unix.UtimesNanoAt(n.parent.fd, n.base, tsSlice(times(n.hdr)), unix.AT_SYMLINK_NOFOLLOW))
}

// finishDirs sets directory mtimes once nothing more is created in them.
func (u *unpacker) finishDirs() error {
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		if d.rel == "" {
			if err := futimens(u.t.root, d.ts); err != nil {
				return wrap("set root times", err)
			}
			continue
		}
		// A directory replaced by a later entry has no time to restore.
		u.t.trim()
		parent, err := u.t.lookup(parentOf(d.rel))
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			continue
		}
		if err != nil {
			return err
		}
		err = unix.UtimesNanoAt(parent.fd, path.Base(d.rel), tsSlice(d.ts), unix.AT_SYMLINK_NOFOLLOW)
		if err != nil && err != unix.ENOENT {
			return errPath("set times", d.rel, err)
		}
	}
	return nil
}
