// Package unpack writes one image layer (an uncompressed tar stream) into a
// directory as an overlayfs lower layer: OCI whiteouts become overlay
// whiteouts, ownership, modes, set-ID bits, xattrs, mtimes and hard links are
// kept.
//
// The stream is hostile input. Every path is resolved by the kernel inside
// the directory (openat2 RESOLVE_IN_ROOT), so entries that point outward
// (absolute names, symlinks, hard links or parents that are symlinks) stay
// contained; names that climb out with ".." are refused. Limits bound the
// bytes and entries a layer may produce.
//
// Nothing is fsynced here: the caller commits the snapshot with a rename and
// decides when one syncfs makes a whole pull durable.
package unpack

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/containerd/errdefs"
)

// Options bound what one layer may produce. Zero means unlimited.
type Options struct {
	MaxEntries int64   // tar entries in the layer
	MaxBytes   int64   // uncompressed tar bytes of the layer
	Image      *Budget // shared by the layers of one image; may be nil
}

// Result describes what Apply wrote.
type Result struct {
	Entries int64 // tar entries processed
	Size    int64 // apparent bytes of regular files
	Usage   int64 // estimated bytes on disk (4 KiB blocks)
	Inodes  int64 // inodes created
}

// Budget is a byte allowance shared by concurrent unpacks.
type Budget struct{ left atomic.Int64 }

// NewBudget returns a budget of n bytes.
func NewBudget(n int64) *Budget {
	b := &Budget{}
	b.left.Store(n)
	return b
}

func (b *Budget) take(n int64) bool { return b.left.Add(-n) >= 0 }

// Apply unpacks the tar stream r into dir, which must exist. It reads r to
// its end even past the tar trailer, so a caller hashing r sees every byte.
// On error, dir holds a partial tree that the caller must remove.
func Apply(ctx context.Context, dir string, r io.Reader, opts Options) (Result, error) {
	t, err := openTree(dir)
	if err != nil {
		return Result{}, err
	}
	defer t.close()
	u := newUnpacker(t, opts)
	lr := &limitReader{r: r, left: opts.MaxBytes, image: opts.Image}
	br := bufio.NewReaderSize(lr, 64<<10)
	if err := u.run(ctx, tar.NewReader(br)); err != nil {
		return u.res, err
	}
	if err := u.finishDirs(); err != nil {
		return u.res, err
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		return u.res, fmt.Errorf("read layer trailer: %w", err)
	}
	return u.res, nil
}

func (u *unpacker) run(ctx context.Context, tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		// ErrInsecurePath only reports what entry() checks itself.
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return fmt.Errorf("read layer tar: %w", classifyRead(err))
		}
		u.res.Entries++
		if u.opts.MaxEntries > 0 && u.res.Entries > u.opts.MaxEntries {
			return fmt.Errorf("layer has more than %d entries: %w", u.opts.MaxEntries, errdefs.ErrResourceExhausted)
		}
		if u.res.Entries%1024 == 0 && ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if err := u.entry(hdr, tr); err != nil {
			return fmt.Errorf("layer entry %q: %w", hdr.Name, classifyRead(err))
		}
	}
}

// classifyRead keeps limit errors and broken connections (classified by the
// reader below) recognisable and calls a corrupt archive what it is.
func classifyRead(err error) error {
	switch {
	case errors.Is(err, errdefs.ErrResourceExhausted), errors.Is(err, errdefs.ErrInvalidArgument), errors.Is(err, errdefs.ErrUnavailable):
		return err
	case errors.Is(err, tar.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	return err
}

// limitReader enforces the per-layer and per-image byte caps on the
// decompressed stream, so a decompression bomb stops at the cap instead of
// filling the disk.
type limitReader struct {
	r     io.Reader
	left  int64 // 0 at start means unlimited
	image *Budget
	used  int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.used += int64(n)
	if l.left > 0 && l.used > l.left {
		return n, fmt.Errorf("layer exceeds %d uncompressed bytes: %w", l.left, errdefs.ErrResourceExhausted)
	}
	if l.image != nil && !l.image.take(int64(n)) {
		return n, fmt.Errorf("image exceeds its uncompressed size limit: %w", errdefs.ErrResourceExhausted)
	}
	return n, err
}
