package imagesvc

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/nodeagent/nodeagent/internal/store"
)

// testRegistry is go-containerregistry's in-process registry, with request
// counts so tests can prove what was (not) fetched.
type testRegistry struct {
	srv  *httptest.Server
	host string

	mu        sync.Mutex
	blobs     map[string]int // GET /v2/.../blobs/<digest> per digest
	manifests int            // GET /v2/.../manifests/...
	paths     []string       // every request path
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	tr := &testRegistry{blobs: map[string]int{}}
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tr.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			tr.count(r.URL.Path)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.srv.Close)
	tr.host = strings.TrimPrefix(tr.srv.URL, "http://")
	return tr
}

func (tr *testRegistry) count(path string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.paths = append(tr.paths, path)
	if i := strings.Index(path, "/blobs/"); i >= 0 {
		tr.blobs[path[i+len("/blobs/"):]]++
	}
	if strings.Contains(path, "/manifests/") {
		tr.manifests++
	}
}

func (tr *testRegistry) blobGets() (total int, perBlob map[string]int) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	perBlob = map[string]int{}
	for d, n := range tr.blobs {
		total += n
		perBlob[d] = n
	}
	return total, perBlob
}

func (tr *testRegistry) push(t testing.TB, repoTag string, img v1.Image) string {
	t.Helper()
	ref, err := name.ParseReference(tr.host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push %s: %v", repoTag, err)
	}
	return tr.host + "/" + repoTag
}

func (tr *testRegistry) pushIndex(t testing.TB, repoTag string, idx v1.ImageIndex) string {
	t.Helper()
	ref, err := name.ParseReference(tr.host+"/"+repoTag, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatalf("push index %s: %v", repoTag, err)
	}
	return tr.host + "/" + repoTag
}

// tent is a tar entry of a test layer.
type tent struct {
	tar.Header
	body string
}

func tfile(name, body string) tent {
	return tent{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}

func tdir(name string) tent {
	return tent{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func tarBytes(t testing.TB, ents ...tent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := e.Header
		h.ModTime = time.Unix(1700000000, 0)
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
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

func testLayer(t testing.TB, opts []tarball.LayerOption, ents ...tent) v1.Layer {
	t.Helper()
	data := tarBytes(t, ents...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, append([]tarball.LayerOption{tarball.WithCompressedCaching}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// testImage stacks layers into a linux/amd64 image.
func testImage(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", "amd64", cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func configDigest(t testing.TB, img v1.Image) string {
	t.Helper()
	h, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	return h.String()
}

// testService runs a Service on a temp root with the real store; the
// registry at host is configured for plain HTTP.
func testService(t testing.TB, cfg Config, plainHosts ...string) (*Service, *store.DB) {
	t.Helper()
	if cfg.Root == "" {
		cfg.Root = t.TempDir()
	}
	if cfg.Registries == nil {
		cfg.Registries = map[string]Registry{}
	}
	for _, h := range plainHosts {
		r := cfg.Registries[h]
		r.PlainHTTP = true
		cfg.Registries[h] = r
	}
	db, err := store.Open(filepath.Join(cfg.Root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	s, err := New(cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	return s, db
}

// dirNames lists a directory, failing the test on error.
func dirNames(t testing.TB, dir string) []string {
	t.Helper()
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

// requireClean asserts that no snapshot, blob, work file or record is left.
func requireClean(t testing.TB, s *Service) {
	t.Helper()
	for _, d := range []string{s.layout.snaps, s.layout.blobs, s.layout.ingest} {
		if names := dirNames(t, d); len(names) != 0 {
			t.Errorf("%s holds %v", d, names)
		}
	}
	if imgs := s.List(); len(imgs) != 0 {
		t.Errorf("images left: %+v", imgs)
	}
	n := 0
	s.db.ForEach(imagesBucket, func(string, []byte) error { n++; return nil })
	if n != 0 {
		t.Errorf("%d records left", n)
	}
	if u := s.FsInfo(); u.UsedBytes != 0 || u.InodesUsed != 0 {
		t.Errorf("usage left: %+v", u)
	}
}
