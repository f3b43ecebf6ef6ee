package imagesvc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// maxIndexDepth bounds indexes nested in indexes (OCI allows nesting; a
// hostile registry could loop).
const maxIndexDepth = 2

// resolve turns the reference into this node's image manifest: a tag costs
// one request; documents named by digest come from blobs/ when present.
func (p *puller) resolve(ctx context.Context) error {
	d, err := p.document(ctx, p.ref.object(), p.ref.Digest, -1)
	if err != nil {
		return err
	}
	p.top = d.digest
	for depth := 0; ; depth++ {
		kind, err := kindOf(d)
		if err != nil {
			return err
		}
		if kind == kindManifest {
			if err := json.Unmarshal(d.data, &p.manifest); err != nil {
				return invalid("manifest %s: %v", d.digest, err)
			}
			p.manifestDigest = d.digest
			return checkManifest(&p.manifest, p.s.cfg.Limits)
		}
		if depth == maxIndexDepth {
			return invalid("index %s: indexes nested deeper than %d", d.digest, maxIndexDepth)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(d.data, &idx); err != nil {
			return invalid("index %s: %v", d.digest, err)
		}
		desc, err := selectPlatform(&idx)
		if err != nil {
			return err
		}
		if err := checkDescriptor(desc, p.s.cfg.Limits.ManifestBytes, "manifest"); err != nil {
			return err
		}
		if d, err = p.document(ctx, string(desc.Digest), string(desc.Digest), desc.Size); err != nil {
			return err
		}
	}
}

// document returns a manifest or index by tag or digest. size < 0 means
// unknown (a reference, not a descriptor).
func (p *puller) document(ctx context.Context, object, digest string, size int64) (document, error) {
	if digest != "" {
		if data, err := os.ReadFile(p.s.layout.blobPath(digest)); err == nil && (size < 0 || int64(len(data)) == size) {
			d := document{data: data, digest: digest}
			p.docs = append(p.docs, d)
			return d, nil
		}
	}
	ss, err := p.session()
	if err != nil {
		return document{}, err
	}
	wctx, wd, stop := newWatchdog(ctx, p.s.cfg.ProgressTimeout)
	defer stop()
	d, err := ss.manifest(wctx, wd, object, digest, p.s.cfg.Limits.ManifestBytes)
	if err != nil {
		return document{}, err
	}
	if size >= 0 && int64(len(d.data)) != size {
		return document{}, invalid("manifest %s is %d bytes, its descriptor says %d", d.digest, len(d.data), size)
	}
	p.docs = append(p.docs, d)
	return d, nil
}

// blobDocument reads a small blob (the config) whole, verified against its
// descriptor.
func (p *puller) blobDocument(ctx context.Context, desc ocispec.Descriptor, max int64) ([]byte, error) {
	digest := string(desc.Digest)
	if data, err := os.ReadFile(p.s.layout.blobPath(digest)); err == nil && int64(len(data)) == desc.Size {
		return data, nil
	}
	ss, err := p.session()
	if err != nil {
		return nil, err
	}
	wctx, wd, stop := newWatchdog(ctx, p.s.cfg.ProgressTimeout)
	defer stop()
	body, err := ss.blob(wctx, digest)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	data, err := readLimited(wd.reader(body, nil), max)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", digest, readErr(wctx, err))
	}
	if int64(len(data)) != desc.Size {
		return nil, invalid("%s is %d bytes, its descriptor says %d", digest, len(data), desc.Size)
	}
	if got := digestOf(data); got != digest {
		return nil, invalid("%s: content digest is %s", digest, got)
	}
	return data, nil
}

// stageBlobs stores documents in blobs/ (temp file, then rename), skipping
// those already there. Called under s.mu by publish, so a concurrent removal
// cannot delete a blob between its write and the record's hold on it.
func (s *Service) stageBlobs(docs []document) error {
	for _, d := range docs {
		final := s.layout.blobPath(d.digest)
		if _, err := os.Stat(final); err == nil {
			continue
		}
		f, err := os.CreateTemp(s.layout.ingest, "blob-")
		if err != nil {
			return err
		}
		_, werr := f.Write(d.data)
		cerr := f.Close()
		if werr == nil && cerr == nil {
			werr = os.Rename(f.Name(), final)
		}
		if werr != nil || cerr != nil {
			os.Remove(f.Name())
			return fmt.Errorf("store blob %s: %w", filepath.Base(final), errors.Join(werr, cerr))
		}
	}
	return nil
}
