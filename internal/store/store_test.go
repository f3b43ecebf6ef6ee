package store

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

// TestOpenRefusesCorruptFile: a damaged file stops Open with an error that
// names the file and the way out, whether the damage is in bbolt's header or
// in a page only a read would meet.
func TestOpenRefusesCorruptFile(t *testing.T) {
	cases := map[string]func(t *testing.T, path string){
		"garbage": func(t *testing.T, path string) {
			write(t, path, 0, bytes.Repeat([]byte("not a bbolt file "), 4096))
		},
		"damaged page": func(t *testing.T, path string) {
			db, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 200 {
				if err := db.Put("things", fmt.Sprintf("key-%03d", i), strings.Repeat("v", 100)); err != nil {
					t.Fatal(err)
				}
			}
			db.Close()
			fi, _ := os.Stat(path)
			// Past the two meta pages: the freelist, branches and leaves.
			write(t, path, 2*4096, bytes.Repeat([]byte{0xa5}, int(fi.Size())-2*4096))
		},
	}
	for name, damage := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "meta.db")
			damage(t, path)
			db, err := Open(path)
			if err == nil {
				db.Close()
				t.Fatal("Open accepted a corrupt file")
			}
			if !errdefs.IsDataLoss(err) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "mv "+path) {
				t.Errorf("error %q: want DataLoss naming the file and how to move it aside", err)
			}
		})
	}
}

func write(t *testing.T, path string, off int64, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
