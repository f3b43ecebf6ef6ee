package testregistry

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"
)

// recipe is this package's source: goBinary builds nnp and pause from it,
// and fingerprint names builds after it (tests included: editing one costs
// a rebuild, which is cheaper than a rule for which files count).
//
//go:embed *.go nnp pause
var recipe embed.FS

// A store is one finished build in the cache dir: an OCI layout plus its
// catalog. It holds a shared lock on the build while open, so that no other
// process prunes what this one serves.
type store struct {
	dir    string
	images []Image
	inUse  *os.File
}

// openStore returns the build of the current recipe in cacheDir, building it
// first if there is none, and prunes builds nobody serves.
func openStore(ctx context.Context, cacheDir string) (*store, error) {
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	// One process at a time downloads, builds, opens or prunes.
	lock, err := flock(filepath.Join(cacheDir, "lock"), unix.LOCK_EX)
	if err != nil {
		return nil, err
	}
	defer lock.Close()

	deb, err := busyboxDeb(ctx, cacheDir)
	if err != nil {
		return nil, err
	}
	fp, err := fingerprint(deb)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(cacheDir, "images-"+fp)
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := buildInto(ctx, dir, deb); err != nil {
			return nil, fmt.Errorf("building test images: %w", err)
		}
	} else if err != nil {
		return nil, err
	}
	inUse, err := flock(filepath.Join(dir, "in-use"), unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	images, err := readCatalog(dir)
	if err != nil {
		inUse.Close()
		return nil, err
	}
	prune(cacheDir, dir)
	return &store{dir: dir, images: images, inUse: inUse}, nil
}

func (s *store) blobPath(h v1.Hash) string {
	return filepath.Join(s.dir, "blobs", h.Algorithm, h.Hex)
}

func (s *store) close() error { return s.inUse.Close() }

// fingerprint names a build after what goes into it: the recipe, the Go
// toolchain and the busybox package, so that a cached build is never stale.
// The host's libc and ipcs are left out: an image keeping an older copy is
// still consistent, and hashing them would cost every start.
func fingerprint(deb string) (string, error) {
	h := sha256.New()
	fmt.Fprintln(h, runtime.Version(), filepath.Base(deb))
	err := fs.WalkDir(recipe, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := recipe.ReadFile(path)
		fmt.Fprintln(h, path, len(data))
		h.Write(data)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:16], err
}

// buildInto builds in a temporary sibling of dir and renames it into place,
// so that dir exists only once complete.
func buildInto(ctx context.Context, dir, deb string) error {
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "building-")
	if err != nil {
		return err
	}
	if _, err := build(ctx, tmp, deb); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return nil
}

// prune removes the builds of other recipes that no process serves, and
// what interrupted builds left (the caller holds the cache lock, so no build
// is running). Best effort: what stays is retried on the next start.
func prune(cacheDir, keep string) {
	entries, _ := os.ReadDir(cacheDir)
	for _, e := range entries {
		path := filepath.Join(cacheDir, e.Name())
		switch {
		case strings.HasPrefix(e.Name(), "building-"):
			os.RemoveAll(path)
		case strings.HasPrefix(e.Name(), "images-") && path != keep:
			if f, err := flock(filepath.Join(path, "in-use"), unix.LOCK_EX|unix.LOCK_NB); err == nil {
				os.RemoveAll(path)
				f.Close()
			}
		}
	}
}

// flock opens (creating) path and locks it; closing the file unlocks it.
func flock(path string, how int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), how); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return f, nil
}
