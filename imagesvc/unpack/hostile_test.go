package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// TestApplyHostile runs the layer side of the hostile-input table:
// every case is refused with a classified error or contained in the tree,
// and nothing outside the tree changes.
func TestApplyHostile(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	secret := filepath.Join(outside, "secret")
	bigDev := ent{Header: tar.Header{Typeflag: tar.TypeChar, Name: "dev/x", Mode: 0o600, Devmajor: 5000, Devminor: 1}}
	bigMinor := ent{Header: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/y", Mode: 0o600, Devmajor: 8, Devminor: 1 << 21, Format: tar.FormatGNU}}
	bigUID := file("f", "x", 0o644)
	bigUID.Uid = 1 << 33
	for _, tc := range []struct {
		name      string
		ents      []ent
		refused   error  // class of the refusal; nil when contained
		contained string // path that must exist inside the tree when contained
	}{
		{"dotdot name", []ent{file("../escape", "x", 0o644)}, errdefs.ErrInvalidArgument, ""},
		{"dotdot inside name", []ent{file("a/../../escape", "x", 0o644)}, errdefs.ErrInvalidArgument, ""},
		{"absolute name", []ent{file(secret, "pwned", 0o644)}, nil, strings.TrimPrefix(secret, "/")},
		{"symlinked parent, absolute", []ent{symlink("lnk", outside), file("lnk/pwned", "x", 0o644)}, nil, strings.TrimPrefix(outside, "/") + "/pwned"},
		{"symlinked parent, relative", []ent{symlink("lnk", "../../../../.."), file("lnk/pwned", "x", 0o644)}, nil, "pwned"},
		{"symlinked grandparent", []ent{symlink("lnk", outside), dir("lnk/sub/", 0o755), file("lnk/sub/pwned", "x", 0o644)}, nil, strings.TrimPrefix(outside, "/") + "/sub/pwned"},
		{"file over outward symlink", []ent{symlink("lnk", secret), file("lnk", "x", 0o644)}, nil, "lnk"},
		{"hard link dotdot", []ent{hardlink("hl", "../outside/secret")}, errdefs.ErrInvalidArgument, ""},
		{"hard link absolute", []ent{hardlink("hl", secret)}, os.ErrNotExist, ""},
		{"hard link via symlink", []ent{symlink("s", outside), hardlink("hl", "s/secret")}, os.ErrNotExist, ""},
		{"hard link to root", []ent{hardlink("hl", "/")}, errdefs.ErrInvalidArgument, ""},
		{"device major", []ent{bigDev}, errdefs.ErrInvalidArgument, ""},
		{"device minor", []ent{bigMinor}, errdefs.ErrInvalidArgument, ""},
		{"uid out of range", []ent{bigUID}, errdefs.ErrInvalidArgument, ""},
		{"whiteout of dotdot", []ent{file(".wh...", "", 0o644)}, errdefs.ErrInvalidArgument, ""},
		{"whiteout of nothing", []ent{file("a/.wh.", "", 0o644)}, errdefs.ErrInvalidArgument, ""},
		{"unsupported type", []ent{{Header: tar.Header{Typeflag: 'V', Name: "vol"}}}, errdefs.ErrInvalidArgument, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetOutside(t, outside, secret)
			snap := filepath.Join(base, "snap")
			if err := os.Mkdir(snap, 0o755); err != nil {
				t.Fatal(err)
			}
			defer os.RemoveAll(snap)
			_, err := Apply(context.Background(), snap, bytes.NewReader(tarOf(t, tc.ents...)), Options{})
			switch {
			case tc.refused != nil && !errors.Is(err, tc.refused):
				t.Errorf("err = %v, want %v", err, tc.refused)
			case tc.refused == nil && err != nil:
				t.Errorf("err = %v, want contained", err)
			case tc.refused == nil:
				if _, err := os.Lstat(filepath.Join(snap, tc.contained)); err != nil {
					t.Errorf("contained entry missing: %v", err)
				}
			}
			checkOutside(t, base, outside, secret)
		})
	}
}

func TestApplyTruncated(t *testing.T) {
	requireRoot(t)
	layer := tarOf(t, file("a", strings.Repeat("x", 4096), 0o644))
	_, err := Apply(context.Background(), t.TempDir(), bytes.NewReader(layer[:1000]), Options{})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v, want invalid argument", err)
	}
}

func resetOutside(t *testing.T, outside, secret string) {
	t.Helper()
	if err := os.MkdirAll(outside, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secret, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func checkOutside(t *testing.T, base, outside, secret string) {
	t.Helper()
	names := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}
	if got := names(base); !slices.Equal(got, []string{"outside", "snap"}) {
		t.Errorf("beside the tree: %v", got)
	}
	if got := names(outside); !slices.Equal(got, []string{"secret"}) {
		t.Errorf("outside dir holds %v", got)
	}
	st := lstat(t, secret)
	b, _ := os.ReadFile(secret)
	if st.Nlink != 1 || string(b) != "secret" || st.Mode&0o777 != 0o600 {
		t.Errorf("secret changed: nlink %d mode %o content %q", st.Nlink, st.Mode&0o777, b)
	}
}
