package imagesvc

import (
	"slices"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// record is an image as persisted in the store (bucket "images", key = id).
type record struct {
	ID          string        `json:"id"`
	RepoTags    []string      `json:"repoTags,omitempty"`
	RepoDigests []string      `json:"repoDigests,omitempty"`
	Manifest    string        `json:"manifest"`
	Blobs       []blobRef     `json:"blobs"` // documents kept in blobs/: indexes, manifest, config
	Layers      []layerRecord `json:"layers"`
	Config      ocispec.Image `json:"config"`
	Updated     time.Time     `json:"updated"`
}

type blobRef struct {
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// layerRecord is one layer and the snapshot it was unpacked into.
type layerRecord struct {
	Digest  string `json:"digest"`  // compressed blob
	DiffID  string `json:"diffID"`  // uncompressed tar
	ChainID string `json:"chainID"` // snapshot name
	Size    int64  `json:"size"`    // compressed bytes
	snapshotUsage
}

// snapshotUsage is measured while unpacking, so that ImageFsInfo and
// image sizes never walk a tree.
type snapshotUsage struct {
	Usage  int64 `json:"usage"`  // bytes on disk (estimated in 4 KiB blocks)
	Inodes int64 `json:"inodes"` // inodes
}

func (r *record) clone() *record {
	c := *r
	c.RepoTags = slices.Clone(r.RepoTags)
	c.RepoDigests = slices.Clone(r.RepoDigests)
	return &c
}

func (r *record) refs() []string {
	return append(slices.Clone(r.RepoTags), r.RepoDigests...)
}

// catalog is the in-memory read model: images by id and by reference, and
// how many holders (image records, pulls in progress) each snapshot and blob
// has. Guarded by Service.mu. Usage totals are kept up to date so FsInfo is
// O(1).
type catalog struct {
	images map[string]*record
	byRef  map[string]string // repo tag or repo digest -> id
	snaps  map[string]*held[snapshotUsage]
	blobs  map[string]*held[int64]
	bytes  int64
	inodes int64
}

type held[T any] struct {
	val   T
	holds int
}

func newCatalog() *catalog {
	return &catalog{
		images: map[string]*record{}, byRef: map[string]string{},
		snaps: map[string]*held[snapshotUsage]{}, blobs: map[string]*held[int64]{},
	}
}

// addSnapshot registers a committed snapshot with no holder yet.
func (c *catalog) addSnapshot(chainID string, u snapshotUsage) {
	if _, ok := c.snaps[chainID]; ok {
		return
	}
	c.snaps[chainID] = &held[snapshotUsage]{val: u}
	c.bytes += u.Usage
	c.inodes += u.Inodes
}

// holdSnapshot takes a hold on a known snapshot.
func (c *catalog) holdSnapshot(chainID string) (snapshotUsage, bool) {
	h, ok := c.snaps[chainID]
	if !ok {
		return snapshotUsage{}, false
	}
	h.holds++
	return h.val, true
}

// releaseSnapshot drops a hold and reports whether nothing holds it now.
func (c *catalog) releaseSnapshot(chainID string) bool {
	h, ok := c.snaps[chainID]
	if !ok {
		return false
	}
	h.holds--
	return h.holds <= 0
}

func (c *catalog) dropSnapshot(chainID string) {
	if h, ok := c.snaps[chainID]; ok {
		c.bytes -= h.val.Usage
		c.inodes -= h.val.Inodes
		delete(c.snaps, chainID)
	}
}

func (c *catalog) holdBlob(digest string, size int64) {
	h, ok := c.blobs[digest]
	if !ok {
		h = &held[int64]{val: size}
		c.blobs[digest] = h
		c.bytes += size
		c.inodes++
	}
	h.holds++
}

func (c *catalog) releaseBlob(digest string) bool {
	h, ok := c.blobs[digest]
	if !ok {
		return false
	}
	h.holds--
	if h.holds > 0 {
		return false
	}
	c.bytes -= h.val
	c.inodes--
	delete(c.blobs, digest)
	return true
}

// insert adds a record and takes its holds.
func (c *catalog) insert(r *record) {
	c.images[r.ID] = r
	for _, ref := range r.refs() {
		c.byRef[ref] = r.ID
	}
	for _, l := range r.Layers {
		c.holdSnapshot(l.ChainID)
	}
	for _, b := range r.Blobs {
		c.holdBlob(b.Digest, b.Size)
	}
}

// remove deletes a record and returns the snapshots and blobs it was the
// last holder of.
func (c *catalog) remove(r *record) (snaps, blobs []string) {
	delete(c.images, r.ID)
	for _, ref := range r.refs() {
		if c.byRef[ref] == r.ID {
			delete(c.byRef, ref)
		}
	}
	for _, l := range r.Layers {
		if c.releaseSnapshot(l.ChainID) {
			c.dropSnapshot(l.ChainID)
			snaps = append(snaps, l.ChainID)
		}
	}
	for _, b := range r.Blobs {
		if c.releaseBlob(b.Digest) {
			blobs = append(blobs, b.Digest)
		}
	}
	return snaps, blobs
}
