package unpack

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strconv"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// maxCachedDirs bounds the open directory descriptors of one unpack. Tar
// streams list a directory's entries together, so a small cache catches
// nearly every lookup; when it fills, it is simply emptied.
const maxCachedDirs = 256

// tree is the snapshot directory being written. Every path is resolved by
// the kernel with RESOLVE_IN_ROOT relative to root, so ".." and symlinks
// (absolute or relative, in any component) can never leave the tree:
// containment is enforced by openat2, not by string checks.
type tree struct {
	path    string
	root    int // O_RDONLY descriptor of the snapshot directory
	rootDir dirent
	dirs    map[string]dirent // cleaned relative dir path -> open directory
}

// dirent is an open directory. sgid matters because a file created in a
// set-group-ID directory takes the directory's group, not ours, so its owner
// must then be set even when the header says 0:0.
type dirent struct {
	fd   int
	sgid bool
}

func openTree(dir string) (*tree, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	t := &tree{path: dir, root: fd, dirs: make(map[string]dirent)}
	t.rootDir, err = describe(fd)
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	return t, nil
}

func describe(fd int) (dirent, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return dirent{}, err
	}
	return dirent{fd: fd, sgid: st.Mode&unix.S_ISGID != 0}, nil
}

func (t *tree) close() {
	t.flush()
	unix.Close(t.root)
}

// flush closes every cached directory. It runs whenever an existing entry is
// replaced, because a cached descriptor may then name a directory that is no
// longer reachable by its path (or that a symlink now stands in for).
func (t *tree) flush() { t.flushExcept("") }

// flushExcept empties the cache but keeps keep open: the caller still holds
// that descriptor (the parent of the entry it is replacing).
func (t *tree) flushExcept(keep string) {
	for p, d := range t.dirs {
		if p != keep || keep == "" {
			unix.Close(d.fd)
			delete(t.dirs, p)
		}
	}
}

// dir returns a descriptor of the directory rel ("" is the root), creating
// missing directories with mode 0755 as tar extractors conventionally do.
func (t *tree) dir(rel string) (dirent, error) {
	if rel == "" {
		return t.rootDir, nil
	}
	if d, ok := t.dirs[rel]; ok {
		return d, nil
	}
	fd, err := openInRoot(t.root, rel)
	if errors.Is(err, unix.ENOENT) {
		fd, err = t.mkdir(rel)
	}
	if err != nil {
		return dirent{}, err
	}
	return t.remember(rel, fd)
}

// lookup is dir without creating anything.
func (t *tree) lookup(rel string) (dirent, error) {
	if rel == "" {
		return t.rootDir, nil
	}
	if d, ok := t.dirs[rel]; ok {
		return d, nil
	}
	fd, err := openInRoot(t.root, rel)
	if err != nil {
		return dirent{}, err
	}
	return t.remember(rel, fd)
}

func (t *tree) mkdir(rel string) (int, error) {
	parent, err := t.dir(parentOf(rel))
	if err != nil {
		return -1, err
	}
	base := path.Base(rel)
	err = unix.Mkdirat(parent.fd, base, 0o755)
	if err == nil {
		return openInRoot(t.root, rel)
	}
	if err != unix.EEXIST {
		return -1, &os.PathError{Op: "mkdir", Path: rel, Err: err}
	}
	// rel exists but does not open as a directory: a symlink whose target
	// is missing. Create the target, resolved inside the tree, as
	// containerd does; the tree has a single writer, so the resolution
	// cannot be raced.
	target, err := securejoin.SecureJoin(t.path, rel)
	if err != nil {
		return -1, err
	}
	if err := os.MkdirAll(target, 0o755); err != nil {
		return -1, err
	}
	return openInRoot(t.root, rel)
}

// remember caches fd as rel. It never evicts: descriptors handed out during
// one entry must stay valid until the entry is done; trim evicts between
// entries.
func (t *tree) remember(rel string, fd int) (dirent, error) {
	d, err := describe(fd)
	if err != nil {
		unix.Close(fd)
		return dirent{}, &os.PathError{Op: "stat", Path: rel, Err: err}
	}
	t.dirs[rel] = d
	return d, nil
}

// trim empties a full cache; called between entries, when no descriptor
// is in use.
func (t *tree) trim() {
	if len(t.dirs) >= maxCachedDirs {
		t.flush()
	}
}

// openInRoot opens the directory rel beneath root, resolving every component
// (symlinks included) as if root were "/".
func openInRoot(root int, rel string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 16 {
		fd, err := unix.Openat2(root, rel, &how)
		// EAGAIN: a concurrent rename raced the lookup; the kernel asks us
		// to retry rather than risk a wrong answer.
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: rel, Err: err}
		}
		return fd, nil
	}
	return -1, &os.PathError{Op: "open", Path: rel, Err: unix.EAGAIN}
}

// removeAt deletes the entry base of directory dirfd, recursively if it is
// a directory. os.RemoveAll walks with *at calls and O_NOFOLLOW, so it does
// not follow symlinks inside the tree.
func removeAt(dirfd int, base string) error {
	err := unix.Unlinkat(dirfd, base, 0)
	if err == nil || err == unix.ENOENT {
		return nil
	}
	if err != unix.EISDIR {
		return &os.PathError{Op: "unlink", Path: base, Err: err}
	}
	return os.RemoveAll(procPath(dirfd, base))
}

// procPath names base inside the directory open as dirfd. Used only for the
// calls that have no *at form; dirfd is already confined to the tree.
func procPath(dirfd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(dirfd) + "/" + base
}

func parentOf(rel string) string {
	p := path.Dir(rel)
	if p == "." {
		return ""
	}
	return p
}

func errPath(op, rel string, err error) error {
	return fmt.Errorf("%s %q: %w", op, rel, err)
}
