package testregistry

import (
	"archive/tar"
	"bytes"
	"path"
	"sort"
	"time"
)

// epoch is the modification time of every file and the creation time of every
// image: fixed, so that the same inputs always give the same digests.
var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// A node is one entry of a layer, owned by root unless uid/gid say otherwise.
type node struct {
	typ      byte  // tar.TypeReg, TypeDir, TypeSymlink or TypeLink
	mode     int64 // permissions plus setuid/setgid/sticky bits, as tar stores them
	uid, gid int
	data     []byte // content of a regular file
	link     string // target of a symlink, or path (without "/") of a hard link's file
}

// A tree is the content of one layer, keyed by path without the leading "/".
type tree map[string]node

func (t tree) dir(name string, mode int64) { t[name] = node{typ: tar.TypeDir, mode: mode} }

func (t tree) file(name string, mode int64, data []byte) {
	t[name] = node{typ: tar.TypeReg, mode: mode, data: data}
}

func (t tree) symlink(name, target string) {
	t[name] = node{typ: tar.TypeSymlink, mode: 0o777, link: target}
}

// hardlink adds name as another link to the file at target, which must be in
// the same tree: a hard link to a lower layer is not portable across unpackers.
func (t tree) hardlink(name, target string) {
	t[name] = node{typ: tar.TypeLink, link: target}
}

// tar renders the tree. Missing parent directories are added (0755, root).
// Entries are sorted by name, which puts every directory before its content,
// except that hard links come last so that the file they name precedes them.
func (t tree) tar() ([]byte, error) {
	all := tree{}
	for name, n := range t {
		all[name] = n
		for dir := path.Dir(name); dir != "."; dir = path.Dir(dir) {
			if _, ok := all[dir]; !ok {
				all.dir(dir, 0o755)
			}
		}
	}
	names := make([]string, 0, len(all))
	for name := range all {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		li, lj := all[names[i]].typ == tar.TypeLink, all[names[j]].typ == tar.TypeLink
		if li != lj {
			return lj
		}
		return names[i] < names[j]
	})

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range names {
		n := all[name]
		if n.typ == tar.TypeLink {
			// A hard link's header carries its file's mode and owner:
			// docker's and containerd's unpackers chmod the shared inode to it.
			t := all[n.link]
			n.mode, n.uid, n.gid = t.mode, t.uid, t.gid
		}
		hdr := &tar.Header{
			Typeflag: n.typ,
			Name:     name,
			Linkname: n.link,
			Mode:     n.mode,
			Uid:      n.uid,
			Gid:      n.gid,
			Size:     int64(len(n.data)),
			ModTime:  epoch,
		}
		if n.typ == tar.TypeDir {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(n.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
