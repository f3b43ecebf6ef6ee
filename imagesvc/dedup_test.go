package imagesvc

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containerd/errdefs"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	crierrors "k8s.io/cri-api/pkg/errors"
)

func TestConcurrentPullsFetchEachBlobOnce(t *testing.T) {
	tr := newTestRegistry(t)
	var layers []v1.Layer
	for i := range 4 {
		layers = append(layers, testLayer(t, nil, tfile("f", string(rune('a'+i)))))
	}
	ref := tr.push(t, "app:v1", testImage(t, v1.Config{}, layers...))
	s, _ := testService(t, Config{}, tr.host)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Go(func() { _, errs[i] = s.Pull(context.Background(), ref, nil) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	_, per := tr.blobGets()
	for d, n := range per {
		if n != 1 {
			t.Errorf("blob %s fetched %d times", d, n)
		}
	}
	if len(per) != 5 { // 4 layers + config
		t.Errorf("fetched %d distinct blobs, want 5", len(per))
	}
}

func TestSharedLayerStoredOnce(t *testing.T) {
	tr := newTestRegistry(t)
	base := testLayer(t, nil, tfile("base", "shared"))
	a := testImage(t, v1.Config{}, base, testLayer(t, nil, tfile("a", "a")))
	b := testImage(t, v1.Config{}, base, testLayer(t, nil, tfile("b", "b")))
	refA, refB := tr.push(t, "a:1", a), tr.push(t, "b:1", b)
	s, _ := testService(t, Config{}, tr.host)
	ctx := context.Background()
	for _, r := range []string{refA, refB} {
		if _, err := s.Pull(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	baseDigest, _ := base.Digest()
	if _, per := tr.blobGets(); per[baseDigest.String()] != 1 {
		t.Errorf("shared layer fetched %d times", per[baseDigest.String()])
	}
	if n := len(dirNames(t, s.layout.snaps)); n != 3 {
		t.Errorf("%d snapshots, want 3", n)
	}
	if err := s.Remove(refA); err != nil {
		t.Fatal(err)
	}
	lowers, err := s.Lowers(refB)
	if err != nil || len(lowers) != 2 {
		t.Fatalf("Lowers(b) = %v, %v", lowers, err)
	}
	if n := len(dirNames(t, s.layout.snaps)); n != 2 {
		t.Errorf("%d snapshots after removing a, want 2", n)
	}
	if err := s.Remove(refB); err != nil {
		t.Fatal(err)
	}
	requireClean(t, s)
}

func TestPullSelectsPlatform(t *testing.T) {
	tr := newTestRegistry(t)
	amd := testImage(t, v1.Config{}, testLayer(t, nil, tfile("arch", "amd64")))
	arm := testImage(t, v1.Config{}, testLayer(t, nil, tfile("arch", "arm64")))
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
	)
	ref := tr.pushIndex(t, "multi:1", idx)
	armOnly := tr.pushIndex(t, "armonly:1", mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}}))
	s, _ := testService(t, Config{}, tr.host)
	img, err := s.Pull(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	idxDigest, _ := idx.Digest()
	if img.ID != configDigest(t, amd) || !slices.Contains(img.RepoDigests, tr.host+"/multi@"+idxDigest.String()) {
		t.Errorf("pulled %s %v", img.ID, img.RepoDigests)
	}
	if _, err := s.Pull(context.Background(), armOnly, nil); !errdefs.IsNotFound(err) {
		t.Errorf("arm-only index: %v", err)
	}
}

func TestMirrors(t *testing.T) {
	mirror := newTestRegistry(t)
	img := testImage(t, v1.Config{}, testLayer(t, nil, tfile("m", "m")))
	mirror.push(t, "library/busybox:1.36", img)
	upstream := newTestRegistry(t)
	upstream.push(t, "app:1", img)
	empty := newTestRegistry(t)
	s, _ := testService(t, Config{Registries: map[string]Registry{
		"docker.io":   {Mirrors: []string{"http://" + mirror.host}},
		upstream.host: {PlainHTTP: true, Mirrors: []string{"http://127.0.0.1:1", "http://" + empty.host}},
	}})
	ctx := context.Background()

	// docker.io is unreachable here: only the mirror can serve this.
	got, err := s.Pull(ctx, "busybox:1.36", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(mirror.paths, "/v2/library/busybox/manifests/1.36") || got.RepoTags[0] != "docker.io/library/busybox:1.36" {
		t.Errorf("mirror saw %v; tags %v", mirror.paths, got.RepoTags)
	}
	// A dead mirror and a mirror without the image fall back to upstream.
	if _, err := s.Pull(ctx, upstream.host+"/app:1", nil); err != nil {
		t.Fatal(err)
	}
	if empty.manifests != 1 || upstream.manifests != 1 {
		t.Errorf("manifest requests: empty mirror %d, upstream %d", empty.manifests, upstream.manifests)
	}
}

func TestUnreachableRegistry(t *testing.T) {
	s, _ := testService(t, Config{}, "127.0.0.1:1")
	_, err := s.Pull(context.Background(), "127.0.0.1:1/app:1", nil)
	if !errors.Is(err, crierrors.ErrRegistryUnavailable) || !errdefs.IsUnavailable(err) ||
		!strings.HasPrefix(err.Error(), crierrors.ErrRegistryUnavailable.Error()) {
		t.Fatalf("err = %v", err)
	}
	requireClean(t, s)
}
