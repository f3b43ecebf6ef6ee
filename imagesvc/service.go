package imagesvc

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/internal/fsutil"
	"github.com/nodeagent/nodeagent/internal/store"
)

// imagesBucket holds one record per image, keyed by image id.
const imagesBucket = "images"

// Store is what the image service needs of the metadata store;
// *store.DB (internal/store) satisfies it. Update makes a tag move (two
// records) atomic.
type Store interface {
	Update(fn func(*store.Tx) error) error
	Delete(bucket, key string) error
	ForEach(bucket string, fn func(key string, raw []byte) error) error
}

var _ Store = (*store.DB)(nil)

// Service is the image service: pulls, the content store, snapshots and
// image records.
type Service struct {
	cfg    Config
	db     Store
	layout layout
	hosts  *hosts
	slots  chan struct{} // layer download slots, shared by all pulls
	pulls  flights       // per reference (+ credential)
	layers flights       // per snapshot (chain id)
	board  board
	tracks sync.Map // chain id -> *layerTrack of the download in flight

	mu  sync.RWMutex // guards cat; never held across I/O other than renames
	cat *catalog
}

// layout is the directory tree under Config.Root.
type layout struct {
	root   string
	blobs  string // blobs/sha256/<hex>: manifests, indexes, configs
	snaps  string // snapshots/<chain-id hex>/fs: one layer each
	ingest string // work in progress; wiped at start
}

func newLayout(root string) layout {
	return layout{
		root:   root,
		blobs:  filepath.Join(root, "blobs", "sha256"),
		snaps:  filepath.Join(root, "snapshots"),
		ingest: filepath.Join(root, "ingest"),
	}
}

func (l layout) blobPath(digest string) string {
	return filepath.Join(l.blobs, strings.TrimPrefix(digest, "sha256:"))
}

func (l layout) snapshotDir(chainID string) string {
	return filepath.Join(l.snaps, strings.TrimPrefix(chainID, "sha256:"))
}

// SnapshotFS is the directory a layer's files live in (an overlay lowerdir).
func (l layout) snapshotFS(chainID string) string {
	return filepath.Join(l.snapshotDir(chainID), "fs")
}

// New loads image records and collects what interrupted pulls left behind.
// Call it before the daemon serves: afterwards, everything on disk belongs
// to a record.
//
// Invariants after New: every record's snapshots exist (a record missing
// one is dropped: the image is pulled again on demand); every snapshot and
// blob on disk is held by a record; ingest/ is empty.
func New(cfg Config, db Store) (*Service, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	h, err := newHosts(cfg)
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg: cfg, db: db, layout: newLayout(cfg.Root), hosts: h,
		slots: make(chan struct{}, cfg.MaxConcurrentDownloads), cat: newCatalog(),
	}
	if err := os.RemoveAll(s.layout.ingest); err != nil {
		return nil, fmt.Errorf("clear interrupted pulls: %w", err)
	}
	for _, d := range []string{s.layout.blobs, s.layout.snaps} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	// Layers are unpacked in ingest/: spread them over the file system.
	if err := fsutil.MakeTopDirs(0o700, s.layout.ingest); err != nil {
		return nil, err
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	if err := s.collect(); err != nil {
		return nil, err
	}
	return s, nil
}

// load reads every record. Tag moves are atomic, so two records never claim
// one tag; should a store edited by hand disagree, the newer record keeps it.
func (s *Service) load() error {
	var recs []*record
	err := s.db.ForEach(imagesBucket, func(key string, raw []byte) error {
		r := &record{}
		if err := json.Unmarshal(raw, r); err != nil || r.ID != key {
			return fmt.Errorf("image record %s is corrupt (%v); remove it from the store", key, err)
		}
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		return err
	}
	kept := recs[:0]
	for _, r := range recs {
		if !s.snapshotsExist(r) {
			if err := s.db.Delete(imagesBucket, r.ID); err != nil {
				return err
			}
			continue
		}
		for _, l := range r.Layers {
			s.cat.addSnapshot(l.ChainID, l.snapshotUsage)
		}
		s.cat.insert(r)
		kept = append(kept, r)
	}
	recs = kept
	winner := map[string]*record{}
	for _, r := range recs {
		for _, t := range r.RepoTags {
			if w, ok := winner[t]; !ok || w.Updated.Before(r.Updated) {
				winner[t] = r
			}
		}
	}
	for _, r := range recs {
		r.RepoTags = slices.DeleteFunc(r.RepoTags, func(t string) bool { return winner[t] != r })
		for _, t := range r.RepoTags {
			s.cat.byRef[t] = r.ID
		}
	}
	return nil
}

func (s *Service) snapshotsExist(r *record) bool {
	for _, l := range r.Layers {
		if _, err := os.Stat(s.layout.snapshotFS(l.ChainID)); err != nil {
			return false
		}
	}
	return true
}

// collect removes snapshots and blobs no record holds: leftovers of pulls
// interrupted between committing a snapshot and saving the record, and of
// removals interrupted after the record was deleted.
func (s *Service) collect() error {
	sweep := func(dir string, keep func(name string) bool) error {
		ents, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if !keep(e.Name()) {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					return fmt.Errorf("collect leftover: %w", err)
				}
			}
		}
		return nil
	}
	if err := sweep(s.layout.snaps, func(n string) bool { _, ok := s.cat.snaps["sha256:"+n]; return ok }); err != nil {
		return err
	}
	return sweep(s.layout.blobs, func(n string) bool { _, ok := s.cat.blobs["sha256:"+n]; return ok })
}

// syncFS makes everything written under root durable with one syncfs(2)
// instead of an fsync per file: a pull creates thousands of files, and only
// the moment its record is committed needs them on disk.
func (s *Service) syncFS() error {
	fd, err := unix.Open(s.layout.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("syncfs %s: %w", s.layout.root, err)
	}
	return nil
}
