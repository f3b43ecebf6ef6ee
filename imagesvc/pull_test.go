package imagesvc

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestPullGetRemove(t *testing.T) {
	tr := newTestRegistry(t)
	img := testImage(t, v1.Config{User: "1000:1000"},
		testLayer(t, nil, tdir("etc/"), tfile("etc/os-release", "ID=test\n"), tfile("etc/gone", "x")),
		testLayer(t, nil, tfile("etc/.wh.gone", ""), tfile("app", "bin")),
	)
	ref := tr.push(t, "team/app:v1", img)
	s, _ := testService(t, Config{PinnedImages: []string{tr.host + "/team/*"}}, tr.host)
	ctx := context.Background()

	got, err := s.Pull(ctx, ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := configDigest(t, img)
	if got.ID != id || !slices.Equal(got.RepoTags, []string{ref}) || len(got.RepoDigests) != 1 ||
		!strings.HasPrefix(got.RepoDigests[0], tr.host+"/team/app@sha256:") || got.Size == 0 ||
		got.UID == nil || *got.UID != 1000 || !got.Pinned || got.Config.Architecture != "amd64" {
		t.Fatalf("pulled %+v", got)
	}
	for _, q := range []string{id, strings.TrimPrefix(id, "sha256:"), id[:15], id[7:20], ref, got.RepoDigests[0]} {
		if g, err := s.Get(q); err != nil || g.ID != id {
			t.Errorf("Get(%q) = %v, %v", q, g.ID, err)
		}
	}
	if _, err := s.Get(tr.host + "/team/app:v2"); !errdefs.IsNotFound(err) {
		t.Errorf("Get absent tag: %v", err)
	}
	lowers, err := s.Lowers(id)
	if err != nil || len(lowers) != 2 {
		t.Fatalf("Lowers = %v, %v", lowers, err)
	}
	if b, err := os.ReadFile(lowers[0] + "/app"); err != nil || string(b) != "bin" {
		t.Errorf("top layer app = %q, %v", b, err)
	}
	if b, err := os.ReadFile(lowers[1] + "/etc/os-release"); err != nil || string(b) != "ID=test\n" {
		t.Errorf("base layer os-release = %q, %v", b, err)
	}
	if u := s.FsInfo(); u.UsedBytes == 0 || u.InodesUsed == 0 {
		t.Errorf("FsInfo = %+v", u)
	}

	// Warm: the tag is resolved (one manifest request), nothing else.
	blobsBefore, _ := tr.blobGets()
	if _, err := s.Pull(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := tr.blobGets(); n != blobsBefore {
		t.Errorf("warm pull fetched %d blobs", n-blobsBefore)
	}
	// By digest: not even a manifest request.
	manifestsBefore := tr.manifests
	if _, err := s.Pull(ctx, got.RepoDigests[0], nil); err != nil {
		t.Fatal(err)
	}
	if tr.manifests != manifestsBefore {
		t.Errorf("pull by known digest asked the registry")
	}

	if err := s.Remove(ref); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id); !errdefs.IsNotFound(err) {
		t.Errorf("Get after remove: %v", err)
	}
	if err := s.Remove(ref); err != nil {
		t.Errorf("second remove: %v", err)
	}
	requireClean(t, s)
}

func TestPullNotFound(t *testing.T) {
	tr := newTestRegistry(t)
	s, _ := testService(t, Config{}, tr.host)
	_, err := s.Pull(context.Background(), tr.host+"/nope:v1", nil)
	if !errdefs.IsNotFound(err) {
		t.Fatalf("err = %v", err)
	}
	_, err = s.Pull(context.Background(), "Bad/Ref", nil)
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("err = %v", err)
	}
	requireClean(t, s)
}

// TestTagMoves: a tag pulled again after it moved names the new image; the
// old image keeps its repo digest (like containerd's <none> tag).
func TestTagMoves(t *testing.T) {
	tr := newTestRegistry(t)
	a := testImage(t, v1.Config{}, testLayer(t, nil, tfile("v", "1")))
	b := testImage(t, v1.Config{}, testLayer(t, nil, tfile("v", "2")))
	ref := tr.push(t, "app:latest", a)
	s, _ := testService(t, Config{}, tr.host)
	ctx := context.Background()
	if _, err := s.Pull(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	tr.push(t, "app:latest", b)
	if _, err := s.Pull(ctx, ref, nil); err != nil {
		t.Fatal(err)
	}
	old, err := s.Get(configDigest(t, a))
	if err != nil || len(old.RepoTags) != 0 || len(old.RepoDigests) != 1 {
		t.Errorf("old image %+v, %v", old, err)
	}
	if cur, err := s.Get(ref); err != nil || cur.ID != configDigest(t, b) {
		t.Errorf("tag names %s, %v", cur.ID, err)
	}
	if n := len(s.List()); n != 2 {
		t.Errorf("%d images", n)
	}
}

// TestUncompressedLayer: a plain tar layer (and a gzip one mislabelled as
// plain, which containerd also accepts) unpack by their magic bytes.
func TestUncompressedLayer(t *testing.T) {
	cr := newCraftedRegistry(t)
	plain := tarBytes(t, tfile("plain", "p"))
	ci := newCraftedImage(t, plain, tarBytes(t, tfile("gz", "g")))
	ci.gzipped[0] = plain
	for _, g := range ci.gzipped {
		d := cr.addBlob(g)
		d.MediaType = "application/vnd.oci.image.layer.v1.tar"
		ci.manifest.Layers = append(ci.manifest.Layers, d)
	}
	ci.publish(cr, "t")
	s, _ := testService(t, Config{}, cr.host)
	img, err := s.Pull(context.Background(), cr.host+"/plain:t", nil)
	if err != nil {
		t.Fatal(err)
	}
	lowers, _ := s.Lowers(img.ID)
	for i, f := range []string{"gz", "plain"} {
		if _, err := os.Stat(lowers[i] + "/" + f); err != nil {
			t.Error(err)
		}
	}
}
