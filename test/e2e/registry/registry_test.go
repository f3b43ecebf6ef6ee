package testregistry

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// reg is shared by the tests. It uses the default cache dir, so only the
// first run on a machine builds.
var reg *Registry

func TestMain(m *testing.M) {
	var err error
	if reg, err = Start(context.Background(), Options{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	reg.Close()
	os.Exit(code)
}

// pull fetches a served image the way a runtime behind a mirror does: by its
// path on the registry, for linux/amd64.
func pull(t *testing.T, img Image) v1.Image {
	t.Helper()
	ref, err := name.ParseReference(reg.Addr()+"/"+img.Repository+":"+img.Tag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(ref, remote.WithPlatform(amd64))
	if err != nil {
		t.Fatal(err)
	}
	if desc.Digest != img.Digest || desc.MediaType != img.MediaType {
		t.Errorf("served %s %s, catalog says %s %s", desc.MediaType, desc.Digest, img.MediaType, img.Digest)
	}
	byDigest, err := remote.Get(ref.Context().Digest(img.Digest.String()))
	if err != nil {
		t.Fatalf("pull by digest: %v", err)
	}
	if byDigest.Digest != img.Digest {
		t.Errorf("pull by digest got %s", byDigest.Digest)
	}
	if img.MediaType.IsIndex() {
		checkIndex(t, desc)
	}
	image, err := desc.Image()
	if err != nil {
		t.Fatal(err)
	}
	if id, err := image.ConfigName(); err != nil || id != img.ID {
		t.Errorf("config digest %s (%v), want image ID %s", id, err, img.ID)
	}
	return image
}

// checkIndex checks an index's decoy: a linux/arm64 image that differs from
// the linux/amd64 one in config and content.
func checkIndex(t *testing.T, desc *remote.Descriptor) {
	t.Helper()
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	configs := map[v1.Hash]bool{}
	for _, d := range m.Manifests {
		platforms = append(platforms, d.Platform.String())
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		configs[cfg] = true
		if d.Platform.Architecture == "arm64" && !hasFile(t, img, "WRONG-PLATFORM") {
			t.Error("arm64 decoy lacks its WRONG-PLATFORM marker")
		}
	}
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64/v8"}) || len(configs) != 2 {
		t.Errorf("index platforms %v with %d distinct configs, want linux/amd64 and a distinct linux/arm64/v8", platforms, len(configs))
	}
}

// An entry is a file of an image's flattened filesystem.
type entry struct {
	hdr  *tar.Header
	data string
}

// files flattens an image into its filesystem, keyed by path without "/".
func files(t *testing.T, img v1.Image) map[string]entry {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	fs := map[string]entry{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return fs
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		fs[strings.TrimSuffix(hdr.Name, "/")] = entry{hdr: hdr, data: string(data)}
	}
}

func hasFile(t *testing.T, img v1.Image, path string) bool {
	_, ok := files(t, img)[path]
	return ok
}

func TestEveryImageIsServed(t *testing.T) {
	var refs []string
	for _, img := range reg.Images() {
		refs = append(refs, img.Reference)
		t.Run(img.Reference, func(t *testing.T) {
			image := pull(t, img)
			cfg, err := image.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.OS != "linux" || cfg.Architecture != "amd64" {
				t.Errorf("platform %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
			}
			if strings.HasPrefix(img.Repository, "nodeagent-bench/") {
				checkBench(t, img, image)
				return
			}
			fs := files(t, image)
			if _, ok := fs["WRONG-PLATFORM"]; ok {
				t.Error("the linux/arm64 decoy was served for linux/amd64")
			}
			if want, ok := wantConfigs[img.Reference]; ok {
				checkConfig(t, cfg.Config, want)
			}
			for path, want := range wantFiles[img.Reference] {
				checkFile(t, fs, path, want)
			}
		})
	}
	// Every image critest pulls must be there.
	for ref := range wantConfigs {
		if !slices.Contains(refs, ref) {
			t.Errorf("%s is not served", ref)
		}
	}
}

func checkConfig(t *testing.T, got, want v1.Config) {
	t.Helper()
	if got.User != want.User || got.WorkingDir != want.WorkingDir || got.StopSignal != want.StopSignal ||
		!slices.Equal(got.Entrypoint, want.Entrypoint) || !slices.Equal(got.Cmd, want.Cmd) {
		t.Errorf("config: user %q workdir %q stop %q entrypoint %q cmd %q; want %q %q %q %q %q",
			got.User, got.WorkingDir, got.StopSignal, got.Entrypoint, got.Cmd,
			want.User, want.WorkingDir, want.StopSignal, want.Entrypoint, want.Cmd)
	}
}

// A wantFile describes a file: its tar type and mode (and root ownership)
// if typ is set, a substring of its content or link target otherwise.
type wantFile struct {
	typ      byte
	mode     int64
	contains string
}

func checkFile(t *testing.T, fs map[string]entry, path string, want wantFile) {
	t.Helper()
	e, ok := fs[path]
	switch {
	case !ok:
		t.Errorf("/%s is missing", path)
	case want.typ != 0 && (e.hdr.Typeflag != want.typ || e.hdr.Mode != want.mode || e.hdr.Uid != 0):
		t.Errorf("/%s: type %c mode %o uid %d, want type %c mode %o uid 0", path, e.hdr.Typeflag, e.hdr.Mode, e.hdr.Uid, want.typ, want.mode)
	case !strings.Contains(e.data+e.hdr.Linkname, want.contains):
		t.Errorf("/%s does not contain %q", path, want.contains)
	}
}

func checkBench(t *testing.T, img Image, image v1.Image) {
	layers, err := image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	wantLayers := map[string]int{"nodeagent-bench/layers5": 5, "nodeagent-bench/layers20": 20}[img.Repository]
	wantType := map[string]types.MediaType{"gzip": types.OCILayer, "zstd": types.OCILayerZStd}[img.Tag]
	var total int64
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil || mt != wantType {
			t.Errorf("layer media type %s (%v), want %s", mt, err, wantType)
		}
		size, err := l.Size()
		if err != nil {
			t.Fatal(err)
		}
		total += size
	}
	if len(layers) != wantLayers || total < 20<<20 {
		t.Errorf("%d layers, %d bytes; want %d layers, tens of MB", len(layers), total, wantLayers)
	}
}

func TestImagesAreDistinctUnlessAliased(t *testing.T) {
	aliases := [][]string{
		{"docker.io/library/busybox:1.37.0", "docker.io/library/busybox:latest"},
		{staging + "test-image-tags:1", staging + "test-image-tags:2", staging + "test-image-tags:3"},
		{"registry.k8s.io/pause:3.9", "k8s.gcr.io/pause:3.9"},
	}
	aliased := func(a, b string) bool {
		return a == b || slices.ContainsFunc(aliases, func(g []string) bool { return slices.Contains(g, a) && slices.Contains(g, b) })
	}
	images := reg.Images()
	for _, a := range images {
		for _, b := range images {
			if (a.ID == b.ID) != aliased(a.Reference, b.Reference) {
				t.Errorf("%s and %s: same image ID is %v", a.Reference, b.Reference, a.ID == b.ID)
			}
		}
	}
}

// TestBuildIsReproducible rebuilds every image from scratch into a fresh
// directory and expects the digests served.
func TestBuildIsReproducible(t *testing.T) {
	images, err := build(context.Background(), t.TempDir(), findDeb(DefaultCacheDir))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(images, reg.Images()) {
		t.Errorf("a rebuild gave other images:\n%v\nwant\n%v", images, reg.Images())
	}
}

func TestWarmStartIsFast(t *testing.T) {
	start := time.Now()
	second, err := Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("warm start took %v", elapsed)
	}
	if !slices.Equal(second.Images(), reg.Images()) {
		t.Error("a second start serves other images")
	}
}

func TestBlobGetsCountsEachGet(t *testing.T) {
	var img Image
	for _, i := range reg.Images() {
		if i.Reference == "docker.io/nodeagent-bench/layers5:zstd" {
			img = i
		}
	}
	layers, err := pull(t, img).Layers()
	if err != nil {
		t.Fatal(err)
	}
	digest, err := layers[0].Digest()
	if err != nil {
		t.Fatal(err)
	}
	url := reg.URL() + "/v2/" + img.Repository + "/blobs/" + digest.String()
	reg.ResetCounters()
	if resp, err := http.Head(url); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD %s: %v %v", url, resp, err)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			resp, err := http.Get(url)
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		})
	}
	wg.Wait()
	if n := reg.BlobGets(digest.String()); n != 3 {
		t.Errorf("BlobGets = %d after 3 GETs and a HEAD, want 3", n)
	}
	reg.ResetCounters()
	if n := reg.BlobGets(digest.String()); n != 0 {
		t.Errorf("BlobGets = %d after ResetCounters", n)
	}
}
