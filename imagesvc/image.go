package imagesvc

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is an image as the CRI ImageService reports it. Slices and Config
// are shared with the service's read model: treat them as read-only.
type Image struct {
	ID             string   // config digest "sha256:..."; PullImage's image_ref
	RepoTags       []string // "docker.io/library/busybox:latest"
	RepoDigests    []string // "docker.io/library/busybox@sha256:..." (digest of what the tag resolved to)
	Size           uint64   // bytes on disk of its layers, uncompressed
	UID            *int64   // from the config's User when numeric
	Username       string   // from the config's User when a name
	Pinned         bool     // matches Config.PinnedImages
	Config         ocispec.Image
	ManifestDigest string // the platform manifest the image was pulled from
}

// FsUsage is the image filesystem's usage, kept up to date by pulls and
// removals rather than measured by walking the tree.
type FsUsage struct {
	Mountpoint string
	UsedBytes  uint64
	InodesUsed uint64
	Timestamp  time.Time
}

func (s *Service) imageOf(r *record) Image {
	img := Image{
		ID: r.ID, RepoTags: r.RepoTags, RepoDigests: r.RepoDigests,
		Config: r.Config, ManifestDigest: r.Manifest,
		Pinned: s.cfg.pinned(r.refs()),
	}
	for _, l := range r.Layers {
		img.Size += uint64(l.Usage)
	}
	img.UID, img.Username = userOf(r.Config.Config.User)
	return img
}

// userOf reads the image's user like containerd: "uid", "uid:gid",
// "name" or "name:group"; only the user part matters.
func userOf(user string) (*int64, string) {
	if user == "" {
		return nil, ""
	}
	u, _, _ := strings.Cut(user, ":")
	if uid, err := strconv.ParseInt(u, 10, 64); err == nil {
		return &uid, ""
	}
	return nil, u
}

// Get finds an image as kubelet and containerd do: by full id (with or
// without "sha256:"), by any reference that normalises to a repo tag or
// repo digest ("busybox" is docker.io/library/busybox:latest), or by a
// unique id prefix. Absent is errdefs.ErrNotFound.
func (s *Service) Get(ref string) (Image, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.lookup(ref)
	if err != nil {
		return Image{}, err
	}
	return s.imageOf(r), nil
}

func (s *Service) lookup(ref string) (*record, error) {
	id := ref
	if hex64Re.MatchString(ref) {
		id = "sha256:" + ref
	}
	if r, ok := s.cat.images[id]; ok {
		return r, nil
	}
	if named, err := ParseReference(ref); err == nil {
		if id, ok := s.cat.byRef[named.String()]; ok {
			return s.cat.images[id], nil
		}
	}
	if prefix := strings.TrimPrefix(ref, "sha256:"); prefix != "" && isHex(prefix) {
		var found *record
		for id, r := range s.cat.images {
			if strings.HasPrefix(id, "sha256:"+prefix) {
				if found != nil {
					return nil, fmt.Errorf("image id prefix %q is ambiguous: %w", ref, errdefs.ErrInvalidArgument)
				}
				found = r
			}
		}
		if found != nil {
			return found, nil
		}
	}
	return nil, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
}

func isHex(s string) bool {
	return strings.Trim(s, "0123456789abcdef") == ""
}

// List returns every image, from memory.
func (s *Service) List() []Image {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Image, 0, len(s.cat.images))
	for _, r := range s.cat.images {
		out = append(out, s.imageOf(r))
	}
	return out
}

// Remove deletes the image ref names with all its tags and digests (as
// containerd's CRI does) and frees the snapshots and blobs no other image
// or pull holds. Removing an absent image succeeds (CRI RemoveImage is
// idempotent).
//
// Whether a container still uses the image is the caller's concern: the
// service does not know containers.
func (s *Service) Remove(ref string) error {
	s.mu.Lock()
	r, err := s.lookup(ref)
	if err != nil {
		s.mu.Unlock()
		if errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	// Persist, then publish: if the delete fails, nothing changed.
	if err := s.db.Delete(imagesBucket, r.ID); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("delete image record %s: %w", r.ID, err)
	}
	snaps, blobs := s.cat.remove(r)
	trash, err := s.moveToTrash(snaps, blobs)
	s.mu.Unlock()
	// The slow part runs unlocked: the trash is in ingest/, invisible to
	// pulls, and wiped at start if we crash now.
	for _, t := range trash {
		if rerr := os.RemoveAll(t); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// moveToTrash renames freed snapshots and blobs into ingest/ (cheap, done
// under the lock, so a pull never sees a half-deleted snapshot).
func (s *Service) moveToTrash(snaps, blobs []string) ([]string, error) {
	var trash []string
	var first error
	move := func(from string) {
		to, err := os.MkdirTemp(s.layout.ingest, "trash-")
		if err == nil {
			err = os.Rename(from, filepath.Join(to, "x"))
		}
		if to != "" {
			trash = append(trash, to)
		}
		if err != nil && !os.IsNotExist(err) && first == nil {
			first = fmt.Errorf("remove %s: %w", from, err)
		}
	}
	for _, c := range snaps {
		move(s.layout.snapshotDir(c))
	}
	for _, b := range blobs {
		move(s.layout.blobPath(b))
	}
	return trash, first
}

// FsInfo reports the image filesystem's usage in O(1).
func (s *Service) FsInfo() FsUsage {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return FsUsage{
		Mountpoint: s.layout.snaps,
		UsedBytes:  uint64(max(s.cat.bytes, 0)),
		InodesUsed: uint64(max(s.cat.inodes, 0)),
		Timestamp:  time.Now(),
	}
}

// Lowers returns the image's snapshot directories for overlayfs'
// lowerdir, top layer first.
func (s *Service) Lowers(ref string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(r.Layers))
	for _, l := range slices.Backward(r.Layers) {
		out = append(out, s.layout.snapshotFS(l.ChainID))
	}
	return out, nil
}

// Progress lists the pulls in progress.
func (s *Service) Progress() []PullProgress { return s.board.snapshot() }
