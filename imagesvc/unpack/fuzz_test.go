package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzApply feeds arbitrary tar streams to Apply and checks that nothing is
// ever written outside the target directory, whatever the entries claim.
func FuzzApply(f *testing.F) {
	for _, seed := range [][]tarEntry{
		{{name: "a", body: "x"}},
		{{name: "../escape", body: "x"}},
		{{name: "/abs", body: "x"}},
		{{name: "d", typ: tar.TypeDir}, {name: "d/l", typ: tar.TypeSymlink, link: "../../.."}, {name: "d/l/out", body: "x"}},
		{{name: "h", typ: tar.TypeLink, link: "../../etc/passwd"}},
		{{name: ".wh..wh..opq", body: ""}, {name: ".wh.x", body: ""}},
	} {
		f.Add(buildTar(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		root := t.TempDir()
		dir := filepath.Join(root, "layer")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		sentinel := filepath.Join(root, "outside")
		if err := os.Mkdir(sentinel, 0o755); err != nil {
			t.Fatal(err)
		}
		_, _ = Apply(context.Background(), dir, bytes.NewReader(data), Options{MaxEntries: 1000, MaxBytes: 1 << 20})
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "layer" && e.Name() != "outside" {
				t.Fatalf("Apply wrote %q beside the layer dir", e.Name())
			}
		}
		if inside, _ := os.ReadDir(sentinel); len(inside) > 0 {
			t.Fatalf("Apply wrote into a sibling directory: %v", inside)
		}
	})
}

type tarEntry struct {
	name, body, link string
	typ              byte
}

func buildTar(entries []tarEntry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Linkname: e.link, Mode: 0o644, Size: int64(len(e.body))}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		_ = tw.WriteHeader(h)
		if typ == tar.TypeReg {
			_, _ = tw.Write([]byte(e.body))
		}
	}
	_ = tw.Close()
	return buf.Bytes()
}
