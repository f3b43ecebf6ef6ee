package main

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// blobLister asks the test registry which blobs (config and layers of the
// linux/amd64 image) a reference is made of, to read its GET counters.
// The registry serves every image at its path without the upstream host,
// as a mirror asks for it.
type blobLister struct {
	host  string // host:port
	mu    sync.Mutex
	cache map[string][]string
}

func newBlobLister(url string) *blobLister {
	host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(url, "http://"), "https://"), "/")
	return &blobLister{host: host, cache: map[string][]string{}}
}

func (l *blobLister) blobs(ctx context.Context, ref string) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if d, ok := l.cache[ref]; ok {
		return d, nil
	}
	up, err := name.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	sep := ":"
	if _, ok := up.(name.Digest); ok {
		sep = "@"
	}
	// RepositoryStr has docker.io's implicit library/ already.
	mirrored, err := name.ParseReference(l.host+"/"+up.Context().RepositoryStr()+sep+up.Identifier(), name.Insecure)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(mirrored, remote.WithContext(ctx),
		remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
	if err != nil {
		return nil, fmt.Errorf("reading %s from the test registry: %w", mirrored, err)
	}
	cfg, err := img.ConfigName()
	if err != nil {
		return nil, err
	}
	digests := []string{cfg.String()}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	for _, layer := range layers {
		d, err := layer.Digest()
		if err != nil {
			return nil, err
		}
		digests = append(digests, d.String())
	}
	l.cache[ref] = digests
	return digests, nil
}
