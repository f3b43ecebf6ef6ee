package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// ent is one tar entry for the tests: a header and, for files, its content.
type ent struct {
	tar.Header
	body string
}

func file(name, body string, mode int64) ent {
	return ent{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body))}, body: body}
}
func dir(name string, mode int64) ent {
	return ent{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}}
}
func symlink(name, target string) ent {
	return ent{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}
func hardlink(name, target string) ent {
	return ent{Header: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

func tarOf(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.Header
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %s: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func lstat(t *testing.T, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func TestApplyKeepsMetadata(t *testing.T) {
	requireRoot(t)
	mtime := time.Unix(1600000000, 123000000)
	suid := file("bin/su", "#!/bin/sh\n", 0o4755)
	suid.Uid, suid.Gid = 1000, 1001
	suid.ModTime = mtime
	cap := file("bin/ping", "x", 0o755)
	cap.PAXRecords = map[string]string{
		"SCHILY.xattr.user.note":                "hi",
		"SCHILY.xattr.trusted.overlay.opaque":   "y", // forged: must be dropped
		"SCHILY.xattr.trusted.overlay.redirect": "/etc",
	}
	d := dir("etc/", 0o2750)
	d.Gid = 42
	d.ModTime = mtime
	dev := ent{Header: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}}
	fifo := ent{Header: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600}}
	layer := tarOf(t,
		dir("bin/", 0o755), suid, cap, d, file("etc/group", "root:x:0:\n", 0o644),
		hardlink("etc/group-link", "etc/group"), symlink("etc/mtab", "/proc/mounts"),
		dev, fifo, file("private", "", 0o600),
	)
	root := t.TempDir()
	res, err := Apply(context.Background(), root, bytes.NewReader(layer), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entries != 10 || res.Size != int64(len("#!/bin/sh\n")+1+len("root:x:0:\n")) {
		t.Errorf("result = %+v", res)
	}
	st := lstat(t, filepath.Join(root, "bin/su"))
	if st.Mode&0o7777 != 0o4755 || st.Uid != 1000 || st.Gid != 1001 {
		t.Errorf("bin/su mode %o owner %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
	}
	if st.Mtim.Sec != mtime.Unix() || st.Mtim.Nsec != 123000000 {
		t.Errorf("bin/su mtime %v", st.Mtim)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(root, "bin/ping"), "user.note", buf); err != nil || string(buf[:n]) != "hi" {
		t.Errorf("user.note = %q, %v", buf[:n], err)
	}
	for _, x := range []string{"trusted.overlay.opaque", "trusted.overlay.redirect"} {
		if _, err := unix.Lgetxattr(filepath.Join(root, "bin/ping"), x, buf); err != unix.ENODATA {
			t.Errorf("forged %s present (err %v)", x, err)
		}
	}
	st = lstat(t, filepath.Join(root, "etc"))
	if st.Mode&0o7777 != 0o2750 || st.Gid != 42 || st.Mtim.Sec != mtime.Unix() {
		t.Errorf("etc mode %o gid %d mtime %v", st.Mode&0o7777, st.Gid, st.Mtim)
	}
	// A file in a set-group-ID directory would take its group; the header says 0.
	if st := lstat(t, filepath.Join(root, "etc/group")); st.Gid != 0 || st.Nlink != 2 {
		t.Errorf("etc/group gid %d nlink %d", st.Gid, st.Nlink)
	}
	if target, _ := os.Readlink(filepath.Join(root, "etc/mtab")); target != "/proc/mounts" {
		t.Errorf("etc/mtab -> %q", target)
	}
	if st := lstat(t, filepath.Join(root, "dev/null")); st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null mode %o rdev %x", st.Mode, st.Rdev)
	}
	if st := lstat(t, filepath.Join(root, "run/fifo")); st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("run/fifo mode %o", st.Mode)
	}
	if st := lstat(t, filepath.Join(root, "private")); st.Mode&0o7777 != 0o600 {
		t.Errorf("private mode %o", st.Mode&0o7777)
	}
}

func TestApplyConvertsWhiteouts(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	layer := tarOf(t, dir("a/", 0o755), file("a/.wh..wh..opq", "", 0o644), file("a/keep", "k", 0o644),
		file(".wh.gone", "", 0o644), file("b/.wh..wh.plnk", "", 0o644))
	if _, err := Apply(context.Background(), root, bytes.NewReader(layer), Options{}); err != nil {
		t.Fatal(err)
	}
	st := lstat(t, filepath.Join(root, "gone"))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("whiteout mode %o rdev %d", st.Mode, st.Rdev)
	}
	buf := make([]byte, 8)
	if n, err := unix.Lgetxattr(filepath.Join(root, "a"), opaqueXattr, buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque xattr %q, %v", buf[:n], err)
	}
	for _, name := range []string{"a/.wh..wh..opq", ".wh.gone", "b/.wh..wh.plnk"} {
		if _, err := os.Lstat(filepath.Join(root, name)); !os.IsNotExist(err) {
			t.Errorf("%s written verbatim", name)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "a/keep")); err != nil {
		t.Error(err)
	}
}

func TestClassifyWhiteout(t *testing.T) {
	for _, tc := range []struct {
		base   string
		kind   whiteoutKind
		target string
	}{
		{"file", notWhiteout, ""},
		{".wh.file", whiteoutFile, "file"},
		{".wh..hidden", whiteoutFile, ".hidden"},
		{".wh..wh..opq", whiteoutOpaqueDir, ""},
		{".wh..wh.plnk", whiteoutIgnored, ""},
		{".wh.", whiteoutFile, ""},
		{"x.wh.y", notWhiteout, ""},
	} {
		kind, target := classifyWhiteout(tc.base)
		if kind != tc.kind || target != tc.target {
			t.Errorf("%q: got %v %q, want %v %q", tc.base, kind, target, tc.kind, tc.target)
		}
	}
}

func TestCleanName(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{"a/b", "a/b", false},
		{"./a/b/", "a/b", false},
		{"/etc/passwd", "etc/passwd", false},
		{"/../../etc", "etc", false},
		{"./", "", false},
		{"..", "", true},
		{"../x", "", true},
		{"a/../../x", "", true},
		{"a\x00b", "", true},
	} {
		got, err := cleanName(tc.in)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("cleanName(%q) = %q, %v", tc.in, got, err)
		}
	}
}

func TestApplyLimits(t *testing.T) {
	requireRoot(t)
	big := file("big", string(make([]byte, 1<<20)), 0o644)
	for _, tc := range []struct {
		name string
		opts Options
		ents []ent
	}{
		{"bytes per layer", Options{MaxBytes: 64 << 10}, []ent{big}},
		{"bytes per image", Options{Image: NewBudget(64 << 10)}, []ent{big}},
		{"entries per layer", Options{MaxEntries: 2}, []ent{file("a", "", 0), file("b", "", 0), file("c", "", 0)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(tarOf(t, tc.ents...)), tc.opts)
			if !errors.Is(err, errdefs.ErrResourceExhausted) {
				t.Fatalf("err = %v, want resource exhausted", err)
			}
		})
	}
}

// TestApplyReplaces: a later entry for the same name wins, whatever the
// types; a repeated directory keeps its contents.
func TestApplyReplaces(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	layer := tarOf(t,
		dir("d/", 0o755), file("d/keep", "k", 0o644), dir("d/", 0o700),
		file("x", "first", 0o644), file("x", "second", 0o644),
		dir("y/", 0o755), file("y/inner", "i", 0o644), file("y", "now a file", 0o644),
		file("z", "file", 0o644), dir("z/", 0o755), file("z/child", "c", 0o644),
		symlink("s", "/etc"), dir("s/", 0o755),
	)
	if _, err := Apply(context.Background(), root, bytes.NewReader(layer), Options{}); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
		}
		return string(b)
	}
	if st := lstat(t, filepath.Join(root, "d")); st.Mode&0o777 != 0o700 || read("d/keep") != "k" {
		t.Errorf("d mode %o", st.Mode&0o777)
	}
	if read("x") != "second" || read("y") != "now a file" || read("z/child") != "c" {
		t.Error("later entries did not win")
	}
	if st := lstat(t, filepath.Join(root, "s")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
		t.Errorf("s is %o, want a directory", st.Mode)
	}
}
