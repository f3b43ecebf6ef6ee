package imagesvc

import (
	"archive/tar"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestPullHostile is the hostile-input table at the pull level:
// each case is refused with a classified error and leaves no snapshot, blob,
// work file or record (requireClean), and nothing beside the root.
func TestPullHostile(t *testing.T) {
	small := tarBytes(t, tfile("hello", "world"))
	zeros := tarBytes(t, tfile("zeros", strings.Repeat("\x00", 16<<20)))
	six := tarBytes(t, tfile("six", strings.Repeat("6", 6<<20)))
	six2 := tarBytes(t, tfile("six2", strings.Repeat("7", 6<<20)))
	var many []tent
	for i := range 20 {
		many = append(many, tfile("f"+string(rune('a'+i)), ""))
	}
	dev := tent{Header: tar.Header{Typeflag: tar.TypeChar, Name: "dev/x", Mode: 0o600, Devmajor: 1 << 13}}
	for _, tc := range []struct {
		name   string
		limits Limits
		build  func(t *testing.T, cr *craftedRegistry) string // returns reference object (tag or digest)
		want   error
	}{
		{"manifest too large", Limits{ManifestBytes: 1024}, func(t *testing.T, cr *craftedRegistry) string {
			ci := newCraftedImage(t, small)
			ci.manifest.Annotations = map[string]string{"pad": strings.Repeat("x", 4096)}
			ci.publish(cr, "t")
			return ":t"
		}, errdefs.ErrResourceExhausted},
		{"config too large", Limits{ConfigBytes: 16}, func(t *testing.T, cr *craftedRegistry) string {
			newCraftedImage(t, small).publish(cr, "t")
			return ":t"
		}, errdefs.ErrResourceExhausted},
		{"config larger than its descriptor", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			ci := newCraftedImage(t, small)
			ci.publish(cr, "")
			ci.manifest.Config.Size--
			ci.publish(cr, "t")
			return ":t"
		}, errdefs.ErrInvalidArgument},
		{"layer digest mismatch", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			ci := newCraftedImage(t, small)
			ci.publish(cr, "t")
			cr.serveBlob = func(w http.ResponseWriter, r *http.Request, dg string, data []byte) {
				if dg == ci.manifest.Layers[0].Digest.String() {
					data = gzipBytes(t, tarBytes(t, tfile("hello", "WORLD")))
				}
				w.Write(data)
			}
			return ":t"
		}, errdefs.ErrInvalidArgument},
		{"layer larger than its descriptor", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			ci := newCraftedImage(t, small)
			ci.publish(cr, "")
			ci.manifest.Layers[0].Size -= 10
			ci.publish(cr, "t")
			return ":t"
		}, errdefs.ErrInvalidArgument},
		{"truncated layer", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			ci := newCraftedImage(t, zeros)
			ci.publish(cr, "t")
			cr.serveBlob = func(w http.ResponseWriter, r *http.Request, dg string, data []byte) {
				if dg == ci.manifest.Layers[0].Digest.String() {
					data = data[:len(data)/2]
				}
				w.Write(data)
			}
			return ":t"
		}, errdefs.ErrInvalidArgument},
		{"corrupt gzip", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			ci := newCraftedImage(t, small)
			g := ci.gzipped[0]
			g[len(g)/2] ^= 0xff
			ci.publish(cr, "t")
			return ":t"
		}, errdefs.ErrInvalidArgument},
		{"diff id mismatch", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			ci := newCraftedImage(t, small)
			ci.config.RootFS.DiffIDs[0] = digest.FromString("other")
			ci.publish(cr, "t")
			return ":t"
		}, errdefs.ErrInvalidArgument},
		{"decompression bomb", Limits{LayerBytes: 1 << 20}, func(t *testing.T, cr *craftedRegistry) string {
			newCraftedImage(t, zeros).publish(cr, "t")
			return ":t"
		}, errdefs.ErrResourceExhausted},
		{"image bytes cap", Limits{ImageBytes: 8 << 20}, func(t *testing.T, cr *craftedRegistry) string {
			newCraftedImage(t, six, six2).publish(cr, "t")
			return ":t"
		}, errdefs.ErrResourceExhausted},
		{"too many files", Limits{FilesPerLayer: 10}, func(t *testing.T, cr *craftedRegistry) string {
			newCraftedImage(t, tarBytes(t, many...)).publish(cr, "t")
			return ":t"
		}, errdefs.ErrResourceExhausted},
		{"too many layers", Limits{LayersPerImage: 2}, func(t *testing.T, cr *craftedRegistry) string {
			newCraftedImage(t, small, small, small).publish(cr, "t")
			return ":t"
		}, errdefs.ErrResourceExhausted},
		{"entry escaping the root", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			newCraftedImage(t, tarBytes(t, tfile("../../../escape", "x"))).publish(cr, "t")
			return ":t"
		}, errdefs.ErrInvalidArgument},
		{"device number out of range", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			newCraftedImage(t, tarBytes(t, dev)).publish(cr, "t")
			return ":t"
		}, errdefs.ErrInvalidArgument},
		{"unsupported layer media type", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			ci := newCraftedImage(t, small)
			ci.publish(cr, "")
			ci.manifest.Layers[0].MediaType = "application/vnd.example.layer.v1.tar+lz4"
			ci.publish(cr, "t")
			return ":t"
		}, errdefs.ErrNotImplemented},
		{"not a container image", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			ci := newCraftedImage(t, small)
			ci.publish(cr, "")
			ci.manifest.Config.MediaType = "application/vnd.cncf.helm.config.v1+json"
			ci.publish(cr, "t")
			return ":t"
		}, errdefs.ErrNotImplemented},
		{"schema 1", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			cr.addManifest("t", map[string]any{"schemaVersion": 1, "fsLayers": []any{}}, mediaTypeDockerSigned1)
			return ":t"
		}, errdefs.ErrNotImplemented},
		{"no layers", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			newCraftedImage(t).publish(cr, "t")
			return ":t"
		}, errdefs.ErrInvalidArgument},
		{"wrong architecture", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			ci := newCraftedImage(t, small)
			ci.config.Architecture = "s390x"
			ci.publish(cr, "t")
			return ":t"
		}, errdefs.ErrNotFound},
		{"manifest digest mismatch", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			newCraftedImage(t, small).publish(cr, "")
			other := digest.FromString("not this")
			cr.manifests[other.String()] = cr.manifests[firstKey(cr.manifests)]
			return "@" + other.String()
		}, errdefs.ErrInvalidArgument},
		{"indexes nested too deep", Limits{}, func(t *testing.T, cr *craftedRegistry) string {
			d := newCraftedImage(t, small).publish(cr, "")
			mt := ocispec.MediaTypeImageManifest
			for i := 0; i < 4; i++ {
				body := cr.manifests[d.String()].body
				idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
					Manifests: []ocispec.Descriptor{{MediaType: mt, Digest: d, Size: int64(len(body)),
						Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}}}}
				d = cr.addManifest("", idx, ocispec.MediaTypeImageIndex)
				mt = ocispec.MediaTypeImageIndex
			}
			return "@" + d.String()
		}, errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := newCraftedRegistry(t)
			parent := t.TempDir()
			root := filepath.Join(parent, "root")
			s, _ := testService(t, Config{Root: root, Limits: tc.limits}, cr.host)
			_, err := s.Pull(context.Background(), cr.host+"/hostile"+tc.build(t, cr), nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			t.Log(err)
			requireClean(t, s)
			if names := dirNames(t, parent); len(names) != 1 {
				t.Errorf("beside the root: %v", names)
			}
		})
	}
}

func firstKey(m map[string]craftedDoc) string {
	for k := range m {
		return k
	}
	return ""
}

// TestHostileContained: entries that merely point outward are kept inside
// the snapshot, and the host is untouched.
func TestHostileContained(t *testing.T) {
	cr := newCraftedRegistry(t)
	outside := t.TempDir()
	lnk := tent{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: "lnk", Linkname: outside, Mode: 0o777}}
	newCraftedImage(t, tarBytes(t, lnk, tfile("lnk/pwned", "x"), tfile("/abs", "y"))).publish(cr, "t")
	s, _ := testService(t, Config{}, cr.host)
	img, err := s.Pull(context.Background(), cr.host+"/contained:t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if names := dirNames(t, outside); len(names) != 0 {
		t.Errorf("written outside: %v", names)
	}
	lowers, _ := s.Lowers(img.ID)
	for _, p := range []string{filepath.Join(lowers[0], outside, "pwned"), filepath.Join(lowers[0], "abs")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("contained entry: %v", err)
		}
	}
}
