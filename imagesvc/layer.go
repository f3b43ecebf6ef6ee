package imagesvc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/containerd/errdefs"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
	crierrors "k8s.io/cri-api/pkg/errors"

	"github.com/nodeagent/nodeagent/imagesvc/overlay"
	"github.com/nodeagent/nodeagent/imagesvc/unpack"
	"github.com/nodeagent/nodeagent/internal/faults"
)

// layerSpec is one layer to make present.
type layerSpec struct {
	digest  string
	size    int64
	diffID  string
	chainID string
}

// chainIDs names each layer's snapshot by the layer and everything below it
// (image-spec config.md): the same diff on a different base is a different
// snapshot, the same stack is shared by every image that has it.
func chainIDs(diffIDs []string) []string {
	out := make([]string, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digestOf([]byte(out[i-1] + " " + d))
	}
	return out
}

// fetchLayers makes every layer present, in parallel (bounded by the
// shared download slots), each unpacked while it downloads.
func (p *puller) fetchLayers(ctx context.Context) error {
	diffIDs := make([]string, len(p.config.RootFS.DiffIDs))
	for i, d := range p.config.RootFS.DiffIDs {
		diffIDs[i] = string(d)
	}
	chains := chainIDs(diffIDs)
	if err := p.checkMountable(chains); err != nil {
		return err
	}
	ss, err := p.session()
	if err != nil {
		return err
	}
	budget := unpack.NewBudget(p.s.cfg.Limits.ImageBytes)
	p.layers = make([]layerRecord, len(chains))
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	for i, l := range p.manifest.Layers {
		spec := layerSpec{digest: string(l.Digest), size: l.Size, diffID: diffIDs[i], chainID: chains[i]}
		g.Go(func() error {
			u, err := p.s.layer(gctx, ss, spec, p.track, budget)
			if err != nil {
				return fmt.Errorf("layer %s: %w", spec.digest, err)
			}
			mu.Lock()
			p.held = append(p.held, spec.chainID)
			mu.Unlock()
			p.layers[i] = layerRecord{Digest: spec.digest, DiffID: spec.diffID, ChainID: spec.chainID, Size: spec.size, snapshotUsage: u}
			return nil
		})
	}
	return g.Wait()
}

// checkMountable refuses, before any download, an image whose layers could
// not be mounted on this kernel: better a clear pull error than a container
// that cannot start.
func (p *puller) checkMountable(chains []string) error {
	lowers := make([]string, len(chains))
	for i, c := range chains {
		lowers[i] = p.s.layout.snapshotFS(c)
	}
	// Container upper and work dirs: <root>/containers/<64 hex>/upper.
	dirLen := len(p.s.layout.root) + len("/containers/") + 64 + len("/upper")
	if !overlay.Fits(lowers, dirLen, dirLen) {
		return fmt.Errorf("image has %d layers: the overlay mount options exceed a page and this kernel lacks lowerdir+ (Linux 6.8): %w", len(chains), errdefs.ErrFailedPrecondition)
	}
	return nil
}

// layer makes one snapshot present and takes a hold on it for the pull.
// Pulls needing the same snapshot share one download.
func (s *Service) layer(ctx context.Context, ss *session, spec layerSpec, track *pullTrack, budget *unpack.Budget) (snapshotUsage, error) {
	var shown *layerTrack // what the pull lists for this layer so far
	for range 3 {
		s.mu.Lock()
		u, ok := s.cat.holdSnapshot(spec.chainID)
		s.mu.Unlock()
		if ok {
			if shown == nil { // else it stays listed as downloaded ("done")
				track.show(nil, newLayerTrack(spec.digest, spec.size, LayerExists))
			}
			return u, nil
		}
		// Every pull sharing the download shows the same progress.
		v, _ := s.tracks.LoadOrStore(spec.chainID, newLayerTrack(spec.digest, spec.size, LayerWaiting))
		lt := v.(*layerTrack)
		track.show(shown, lt)
		shown = lt
		_, err := s.layers.do(ctx, spec.chainID, func(ctx context.Context) (any, error) {
			defer s.tracks.CompareAndDelete(spec.chainID, lt)
			err := s.unpackLayer(ctx, ss, spec, lt, budget)
			if err != nil {
				lt.set(LayerFailed)
			}
			return nil, err
		})
		if err != nil {
			return snapshotUsage{}, err
		}
		// Committed with no holder; loop to take our hold. Only a removal
		// racing in between can make us go round again.
	}
	return snapshotUsage{}, fmt.Errorf("snapshot %s removed while being pulled: %w", spec.chainID, errdefs.ErrAborted)
}

// unpackLayer streams one layer: HTTP body -> compressed digest and size
// check -> decompressor -> uncompressed digest (the diff id) -> tar ->
// files in ingest/, renamed to snapshots/<chain-id> once both digests
// match. Any failure removes the work directory.
func (s *Service) unpackLayer(ctx context.Context, ss *session, spec layerSpec, lt *layerTrack, budget *unpack.Budget) (err error) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	lt.set(LayerDownloading)
	work, err := os.MkdirTemp(s.layout.ingest, "layer-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(work)
		}
	}()
	fsDir := filepath.Join(work, "fs")
	if err := os.Mkdir(fsDir, 0o755); err != nil {
		return err
	}
	u, err := s.download(ctx, ss, spec, lt, budget, fsDir)
	if err != nil {
		return err
	}
	if err := s.commitSnapshot(work, spec.chainID, u); err != nil {
		return err
	}
	lt.set(LayerDone)
	return nil
}

func (s *Service) download(ctx context.Context, ss *session, spec layerSpec, lt *layerTrack, budget *unpack.Budget, fsDir string) (snapshotUsage, error) {
	wctx, wd, stop := newWatchdog(ctx, s.cfg.ProgressTimeout)
	defer stop()
	body, err := ss.blob(wctx, spec.digest)
	if err != nil {
		return snapshotUsage{}, err
	}
	defer body.Close()
	v := &verifier{r: wd.reader(body, &lt.done), h: sha256.New(), size: spec.size}
	dec, err := decompress(v)
	if err != nil {
		return snapshotUsage{}, readErr(wctx, err)
	}
	defer dec.Close()
	diff := sha256.New()
	res, err := unpack.Apply(wctx, fsDir, io.TeeReader(dec, diff), unpack.Options{
		MaxEntries: s.cfg.Limits.FilesPerLayer, MaxBytes: s.cfg.Limits.LayerBytes, Image: budget,
	})
	if err != nil {
		return snapshotUsage{}, unpackErr(wctx, err)
	}
	if err := v.finish(spec.digest); err != nil {
		return snapshotUsage{}, unpackErr(wctx, err)
	}
	if got := "sha256:" + hex.EncodeToString(diff.Sum(nil)); got != spec.diffID {
		return snapshotUsage{}, invalid("uncompressed digest is %s, the config says %s", got, spec.diffID)
	}
	return snapshotUsage{Usage: res.Usage + 4096, Inodes: res.Inodes + 1}, nil
}

// unpackErr keeps the class the unpack, the decompressor or the verifier
// gave an error (content, limits, connection, local disk), unless the
// download was cancelled or stalled, which is what the caller must hear.
func unpackErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// commitSnapshot publishes a finished snapshot with a rename: a snapshot
// directory either is complete or does not exist.
func (s *Service) commitSnapshot(work, chainID string, u snapshotUsage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	final := s.layout.snapshotDir(chainID)
	if _, ok := s.cat.snaps[chainID]; ok {
		return os.RemoveAll(work)
	}
	// Not in the catalog, so nobody uses whatever may be there.
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	if err := os.Rename(work, final); err != nil {
		return fmt.Errorf("commit snapshot: %w", err)
	}
	s.cat.addSnapshot(chainID, u)
	return nil
}

// verifier hashes and counts the compressed stream, refusing more bytes
// than the descriptor declares, and marks errors of the connection so they
// are reported as the registry's, not the image's.
type verifier struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	size int64
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.n > v.size {
		return 0, invalid("blob is larger than its descriptor's %d bytes", v.size)
	}
	if rem := v.size + 1 - v.n; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	if v.n > 0 && v.n < v.size {
		faults.Point("image/mid-download")
	}
	if v.n > v.size {
		return n, invalid("blob is larger than its descriptor's %d bytes", v.size)
	}
	if err == io.EOF && v.n < v.size {
		// The response ended cleanly short of the descriptor's size: the
		// registry serves other content under this digest.
		return n, invalid("blob is truncated: the registry sent %d of %d bytes", v.n, v.size)
	}
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read blob after %d of %d bytes: %w: %w: %w", v.n, v.size, err, crierrors.ErrRegistryUnavailable, errdefs.ErrUnavailable)
	}
	return n, err
}

// finish reads what the decompressor left and checks size and digest.
func (v *verifier) finish(digest string) error {
	if _, err := io.Copy(io.Discard, v); err != nil {
		return err
	}
	if v.n != v.size {
		return invalid("blob is truncated: %d of %d bytes", v.n, v.size)
	}
	if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != digest {
		return invalid("blob digest is %s, want %s", got, digest)
	}
	return nil
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// decompress picks the decompressor from the stream's magic bytes.
func decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, err := br.Peek(4)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, gzipMagic):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, invalid("gzip layer: %v", err)
		}
		return &decodeErrs{r: gz, c: gz}, nil
	case bytes.HasPrefix(magic, zstdMagic):
		// A window cap bounds the decoder's memory whatever the
		// frame header asks for.
		zr, err := zstd.NewReader(br, zstd.WithDecoderMaxWindow(1<<27), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, invalid("zstd layer: %v", err)
		}
		return &decodeErrs{r: zr, c: zr.IOReadCloser()}, nil
	}
	return io.NopCloser(br), nil
}

// decodeErrs reports a corrupt compressed stream as invalid content, while
// connection errors from below keep their class.
type decodeErrs struct {
	r io.Reader
	c io.Closer
}

func (d *decodeErrs) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF && !errors.Is(err, errdefs.ErrUnavailable) && !errors.Is(err, errdefs.ErrInvalidArgument) {
		err = invalid("decompress layer: %v", err)
	}
	return n, err
}

func (d *decodeErrs) Close() error { return d.c.Close() }
