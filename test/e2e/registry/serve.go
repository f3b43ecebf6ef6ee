package testregistry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// newHandler returns a go-containerregistry registry that serves the store:
// blobs straight from the layout, manifests put into its memory under every
// tag and digest they are pulled by.
func newHandler(st *store) (http.Handler, error) {
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)), registry.WithBlobHandler(layoutBlobs{st}))
	for _, img := range st.images {
		if err := putManifest(h, st, img.Repository, img.Tag, img.Digest, img.MediaType); err != nil {
			return nil, fmt.Errorf("serving %s: %w", img.Reference, err)
		}
	}
	return h, nil
}

// putManifest puts a manifest into h's repo under target (a tag or its
// digest). An index's manifests go first, by digest: the registry checks
// that they exist, and runtimes pull them by digest.
func putManifest(h http.Handler, st *store, repo, target string, digest v1.Hash, mediaType types.MediaType) error {
	raw, err := os.ReadFile(st.blobPath(digest))
	if err != nil {
		return err
	}
	if mediaType.IsIndex() {
		index, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return err
		}
		for _, m := range index.Manifests {
			if err := putManifest(h, st, repo, m.Digest.String(), m.Digest, m.MediaType); err != nil {
				return err
			}
		}
	}
	req := httptest.NewRequest(http.MethodPut, "/v2/"+repo+"/manifests/"+target, bytes.NewReader(raw))
	req.Header.Set("Content-Type", string(mediaType))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusCreated {
		return fmt.Errorf("PUT %s: %d %s", req.URL, rec.Code, rec.Body)
	}
	return nil
}

// layoutBlobs serves blobs from the store's OCI layout. Unlike
// registry.NewDiskBlobHandler it does not hash a blob again on every
// request, which would take from benchmarks CPU that belongs to the runtime
// under test; build wrote each blob under its digest.
type layoutBlobs struct{ st *store }

func (b layoutBlobs) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	fi, err := os.Stat(b.st.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, registry.ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (b layoutBlobs) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	f, err := os.Open(b.st.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, registry.ErrNotFound
	}
	return f, err
}

// countBlobGets wraps h to count GET /v2/<repo>/blobs/<digest> per digest.
func (r *Registry) countBlobGets(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		i := strings.LastIndex(req.URL.Path, "/blobs/sha256:")
		if req.Method == http.MethodGet && i >= 0 {
			r.mu.Lock()
			r.blobGets[req.URL.Path[i+len("/blobs/"):]]++
			r.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	})
}
