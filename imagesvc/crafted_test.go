package imagesvc

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// craftedRegistry serves hand-made documents and blobs, so tests can hand
// the service exactly the hostile content they mean to.
type craftedRegistry struct {
	srv  *httptest.Server
	host string

	mu        sync.Mutex
	manifests map[string]craftedDoc // by tag or digest
	blobs     map[string][]byte
	// serveBlob, when set, answers blob requests instead.
	serveBlob func(w http.ResponseWriter, r *http.Request, digest string, data []byte)
}

type craftedDoc struct {
	body      []byte
	mediaType string
}

func newCraftedRegistry(t testing.TB) *craftedRegistry {
	cr := &craftedRegistry{manifests: map[string]craftedDoc{}, blobs: map[string][]byte{}}
	cr.srv = httptest.NewServer(http.HandlerFunc(cr.serve))
	t.Cleanup(cr.srv.Close)
	cr.host = strings.TrimPrefix(cr.srv.URL, "http://")
	return cr
}

func (cr *craftedRegistry) serve(w http.ResponseWriter, r *http.Request) {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if i := strings.Index(r.URL.Path, "/manifests/"); i >= 0 {
		d, ok := cr.manifests[r.URL.Path[i+len("/manifests/"):]]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", d.mediaType)
		w.Write(d.body)
		return
	}
	if i := strings.Index(r.URL.Path, "/blobs/"); i >= 0 {
		dg := r.URL.Path[i+len("/blobs/"):]
		data, ok := cr.blobs[dg]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if cr.serveBlob != nil {
			cr.serveBlob(w, r, dg, data)
			return
		}
		w.Write(data)
		return
	}
	http.NotFound(w, r)
}

func (cr *craftedRegistry) addBlob(data []byte) ocispec.Descriptor {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	d := digest.FromBytes(data)
	cr.blobs[d.String()] = data
	return ocispec.Descriptor{Digest: d, Size: int64(len(data))}
}

func (cr *craftedRegistry) addManifest(tag string, v any, mediaType string) digest.Digest {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	d := digest.FromBytes(body)
	doc := craftedDoc{body: body, mediaType: mediaType}
	cr.manifests[d.String()] = doc
	if tag != "" {
		cr.manifests[tag] = doc
	}
	return d
}

// craftedImage is the parts of an image a test may break before publishing.
type craftedImage struct {
	layers   [][]byte // uncompressed tars
	gzipped  [][]byte // what is served; defaults to gzip of layers
	config   ocispec.Image
	manifest ocispec.Manifest
}

func newCraftedImage(t testing.TB, layers ...[]byte) *craftedImage {
	ci := &craftedImage{layers: layers}
	ci.config = ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		RootFS:   ocispec.RootFS{Type: "layers"},
	}
	for _, l := range layers {
		ci.gzipped = append(ci.gzipped, gzipBytes(t, l))
		ci.config.RootFS.DiffIDs = append(ci.config.RootFS.DiffIDs, digest.FromBytes(l))
	}
	ci.manifest = ocispec.Manifest{
		Versioned: specs.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest,
	}
	return ci
}

// publish uploads blobs and the config, fills in descriptors the test left
// empty, and tags the manifest.
func (ci *craftedImage) publish(cr *craftedRegistry, tag string) digest.Digest {
	if ci.manifest.Layers == nil {
		for _, g := range ci.gzipped {
			d := cr.addBlob(g)
			d.MediaType = ocispec.MediaTypeImageLayerGzip
			ci.manifest.Layers = append(ci.manifest.Layers, d)
		}
	}
	if ci.manifest.Config.Digest == "" {
		raw, _ := json.Marshal(ci.config)
		d := cr.addBlob(raw)
		d.MediaType = ocispec.MediaTypeImageConfig
		ci.manifest.Config = d
	}
	return cr.addManifest(tag, ci.manifest, ocispec.MediaTypeImageManifest)
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
