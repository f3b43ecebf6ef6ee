package testregistry

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// DefaultCacheDir is where Start keeps its builds unless told otherwise.
const DefaultCacheDir = "/var/cache/nodeagent-test/registry"

// Options configure Start. The zero value is ready to use.
type Options struct {
	// Listen is the TCP address to serve on; default 127.0.0.1:0.
	Listen string
	// CacheDir keeps the busybox package and the built images between
	// runs; default DefaultCacheDir.
	CacheDir string
}

// An Image is one reference the registry serves.
type Image struct {
	// Reference as critest writes it, e.g.
	// registry.k8s.io/e2e-test-images/busybox:1.29-2.
	Reference string `json:"reference"`
	// Repository is the path it is served at: the reference without its
	// host, as a mirror sends it (e2e-test-images/busybox,
	// library/busybox for docker.io/busybox).
	Repository string `json:"repository"`
	Tag        string `json:"tag"`
	// Digest is that of the manifest or index the tag points to; the image
	// can be pulled by it too.
	Digest    v1.Hash         `json:"digest"`
	MediaType types.MediaType `json:"mediaType"`
	// ID is the config digest of the linux/amd64 image, which a runtime
	// reports as the image ID.
	ID v1.Hash `json:"id"`
}

// A Registry serves the test images over plain HTTP until closed.
type Registry struct {
	srv   *http.Server
	addr  string
	store *store

	mu       sync.Mutex
	blobGets map[string]int // GET requests per blob digest
}

// Start builds the images, or loads them from opts.CacheDir when an earlier
// start built them, and serves them. ctx bounds only the start; the registry
// serves until Close.
func Start(ctx context.Context, opts Options) (*Registry, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	if opts.CacheDir == "" {
		opts.CacheDir = DefaultCacheDir
	}
	st, err := openStore(ctx, opts.CacheDir)
	if err != nil {
		return nil, err
	}
	handler, err := newHandler(st)
	if err != nil {
		st.close()
		return nil, err
	}
	l, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		st.close()
		return nil, err
	}
	r := &Registry{store: st, addr: l.Addr().String(), blobGets: map[string]int{}}
	r.srv = &http.Server{Handler: r.countBlobGets(handler), ReadHeaderTimeout: time.Minute}
	go r.srv.Serve(l) // returns http.ErrServerClosed once closed
	return r, nil
}

// Addr is the host:port the registry listens on.
func (r *Registry) Addr() string { return r.addr }

// URL is the registry's base URL, as a mirror endpoint takes it.
func (r *Registry) URL() string { return "http://" + r.addr }

// Images lists the references served, sorted.
func (r *Registry) Images() []Image { return slices.Clone(r.store.images) }

// BlobGets tells how many GET requests blob digest ("sha256:...") got since
// start or the last ResetCounters: with it a benchmark can show that N
// concurrent pulls of one image fetch each blob once.
func (r *Registry) BlobGets(digest string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blobGets[digest]
}

// ResetCounters zeroes every BlobGets count.
func (r *Registry) ResetCounters() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.blobGets)
}

// Close stops serving and lets other processes prune the build it served.
func (r *Registry) Close() error {
	return errors.Join(r.srv.Close(), r.store.close())
}
