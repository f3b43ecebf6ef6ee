package imagesvc

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/nodeagent/nodeagent/imagesvc/overlay"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// mountLowers mounts an overlay of lowers with a fresh upper and work dir,
// unmounted when the test ends.
func mountLowers(t *testing.T, lowers []string) string {
	t.Helper()
	dir := t.TempDir()
	target, upper, work := filepath.Join(dir, "rootfs"), filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{target, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := overlay.Mount(target, lowers, upper, work); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := overlay.Unmount(target); err != nil {
			t.Error(err)
		}
	})
	return target
}

// TestOverlayOfPulledImage: the snapshots of a pulled image, stacked by
// overlayfs, show the image's filesystem: whiteouts hide, opaque
// directories reset, gzip, zstd and uncompressed layers all unpack.
func TestOverlayOfPulledImage(t *testing.T) {
	requireRoot(t)
	tr := newTestRegistry(t)
	zstd := []tarball.LayerOption{tarball.WithCompression("zstd"), tarball.WithMediaType("application/vnd.oci.image.layer.v1.tar+zstd")}
	link := tent{Header: tar.Header{Typeflag: tar.TypeLink, Name: "etc/b-link", Linkname: "etc/b"}}
	img := testImage(t, v1.Config{},
		testLayer(t, nil, tdir("etc/"), tfile("etc/a", "a"), tfile("etc/b", "b"), link, tdir("d/"), tfile("d/x", "x")),
		testLayer(t, zstd, tfile("etc/.wh.a", ""), tdir("d/"), tfile("d/.wh..wh..opq", ""), tfile("d/y", "y")),
		testLayer(t, []tarball.LayerOption{tarball.WithCompressionLevel(0)}, tfile("top", "t")),
	)
	ref := tr.push(t, "stack:1", img)
	s, _ := testService(t, Config{}, tr.host)
	got, err := s.Pull(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	lowers, err := s.Lowers(got.ID)
	if err != nil {
		t.Fatal(err)
	}
	root := mountLowers(t, lowers)
	for p, want := range map[string]bool{"etc/a": false, "etc/b": true, "etc/b-link": true, "d/x": false, "d/y": true, "top": true} {
		_, err := os.Stat(filepath.Join(root, p))
		if (err == nil) != want {
			t.Errorf("%s: exists=%v, want %v", p, err == nil, want)
		}
	}
}

// TestManyLayers: an image whose lowerdir list exceeds a page still mounts
// (lowerdir+), or, on an older kernel, is refused at pull.
func TestManyLayers(t *testing.T) {
	requireRoot(t)
	tr := newTestRegistry(t)
	var layers []v1.Layer
	for i := range 60 {
		layers = append(layers, testLayer(t, nil, tfile(fmt.Sprintf("f%02d", i), "x")))
	}
	ref := tr.push(t, "many:1", testImage(t, v1.Config{}, layers...))
	s, _ := testService(t, Config{}, tr.host)
	got, err := s.Pull(context.Background(), ref, nil)
	if !overlay.LowerdirPlus() {
		if err == nil {
			t.Fatal("accepted an image this kernel cannot mount")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	lowers, _ := s.Lowers(got.ID)
	root := mountLowers(t, lowers)
	for _, f := range []string{"f00", "f59"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			t.Error(err)
		}
	}
}
