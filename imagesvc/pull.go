package imagesvc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	crierrors "k8s.io/cri-api/pkg/errors"

	"github.com/nodeagent/nodeagent/internal/faults"
	"github.com/nodeagent/nodeagent/internal/store"
)

// Pull makes ref present and returns it; Image.ID (the config digest) is
// PullImageResponse.image_ref. Concurrent pulls of one reference (with the
// same credential) share one pull; layers shared with other pulls or images
// are fetched and stored once; an image already present is not fetched
// again (a tag is still resolved: it may have moved).
//
// A pull that fails, is cancelled by its last caller, or receives no byte
// for Config.ProgressTimeout leaves no snapshot, blob or record behind.
func (s *Service) Pull(ctx context.Context, ref string, auth *Auth) (Image, error) {
	r, err := ParseReference(ref)
	if err != nil {
		return Image{}, err
	}
	// The credential is part of the key: a caller without access to a
	// private image must not ride on another caller's pull of it.
	v, err := s.pulls.do(ctx, r.String()+"\x00"+authKey(auth), func(ctx context.Context) (any, error) {
		return s.pull(ctx, r, auth)
	})
	if errors.Is(err, crierrors.ErrRegistryUnavailable) {
		// kubelet recognises this case by the message prefix (gRPC
		// errors carry no chain): keep the sentinel first.
		return Image{}, fmt.Errorf("%w: pull %s: %w", crierrors.ErrRegistryUnavailable, r, err)
	}
	if err != nil {
		return Image{}, fmt.Errorf("pull %s: %w", r, diskFull(err))
	}
	return v.(Image), nil
}

func authKey(a *Auth) string {
	if a == nil {
		return ""
	}
	raw, _ := json.Marshal(a)
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

func (s *Service) pull(ctx context.Context, r Reference, auth *Auth) (Image, error) {
	if r.Digest != "" {
		s.mu.RLock()
		rec, ok := s.cat.images[s.cat.byRef[r.String()]]
		var img Image
		if ok {
			img = s.imageOf(rec)
		}
		s.mu.RUnlock()
		if ok {
			return img, nil
		}
	}
	track := s.board.start(r.String())
	defer s.board.finish(track)
	p := &puller{s: s, ref: r, auth: auth, track: track}
	defer p.release()
	if err := p.resolve(ctx); err != nil {
		return Image{}, err
	}
	id := string(p.manifest.Config.Digest)
	if img, ok, err := s.publish(id, nil, nil, r, p.top); ok || err != nil {
		return img, err
	}
	if err := p.fetchConfig(ctx); err != nil {
		return Image{}, err
	}
	if err := p.fetchLayers(ctx); err != nil {
		return Image{}, err
	}
	// One syncfs before the record is committed: the record must never
	// name files that are still only in the page cache.
	if err := s.syncFS(); err != nil {
		return Image{}, err
	}
	img, _, err := s.publish(id, p.record(), p.docs, r, p.top)
	return img, err
}

// puller is the state of one pull.
type puller struct {
	s     *Service
	ref   Reference
	auth  *Auth
	track *pullTrack
	ss    *session

	top            string // digest the reference resolved to
	manifestDigest string
	manifest       ocispec.Manifest
	config         ocispec.Image
	docs           []document // index(es), manifest, config: kept in blobs/
	layers         []layerRecord
	held           []string // snapshots this pull holds until it ends
}

func (p *puller) session() (*session, error) {
	if p.ss == nil {
		ss, err := p.s.newSession(p.ref, p.auth)
		if err != nil {
			return nil, err
		}
		p.ss = ss
	}
	return p.ss, nil
}

func (p *puller) record() *record {
	rec := &record{
		ID: string(p.manifest.Config.Digest), Manifest: p.manifestDigest,
		Layers: p.layers, Config: p.config,
	}
	for _, d := range p.docs {
		if !slices.ContainsFunc(rec.Blobs, func(b blobRef) bool { return b.Digest == d.digest }) {
			rec.Blobs = append(rec.Blobs, blobRef{Digest: d.digest, Size: int64(len(d.data))})
		}
	}
	return rec
}

// release drops the pull's snapshot holds. A snapshot nothing else holds
// (the pull failed before its record was saved) is deleted: a failed pull
// leaves no trace.
func (p *puller) release() {
	s := p.s
	s.mu.Lock()
	var orphans []string
	for _, c := range p.held {
		if s.cat.releaseSnapshot(c) {
			s.cat.dropSnapshot(c)
			orphans = append(orphans, c)
		}
	}
	trash, _ := s.moveToTrash(orphans, nil)
	s.mu.Unlock()
	for _, t := range trash {
		os.RemoveAll(t)
	}
}

// publish adds r (and the digest it resolved to) to image id and saves it:
// to the existing record when the image is present (then fresh may be
// nil; ok=false with fresh nil means "not present"), else as fresh, whose
// documents are stored first. A tag moving from another image is taken from
// it in the same transaction. Persist, then publish.
func (s *Service) publish(id string, fresh *record, docs []document, r Reference, top string) (Image, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.cat.images[id]
	if cur == nil && fresh == nil {
		return Image{}, false, nil
	}
	next := fresh
	if cur != nil {
		next = cur.clone()
	}
	if !addRefs(next, r, top) && cur != nil {
		return s.imageOf(cur), true, nil // a warm pull writes nothing
	}
	next.Updated = time.Now().UTC()
	var loser *record
	if owner, ok := s.cat.byRef[r.String()]; ok && owner != id {
		loser = s.cat.images[owner].clone()
		loser.RepoTags = slices.DeleteFunc(loser.RepoTags, func(t string) bool { return t == r.String() })
	}
	if cur == nil {
		if err := s.stageBlobs(docs); err != nil {
			return Image{}, false, err
		}
		faults.Point("image/before-record")
	}
	err := s.db.Update(func(tx *store.Tx) error {
		if loser != nil {
			if err := tx.Put(imagesBucket, loser.ID, loser); err != nil {
				return err
			}
		}
		return tx.Put(imagesBucket, id, next)
	})
	if err != nil {
		return Image{}, false, fmt.Errorf("save image record %s: %w", id, err)
	}
	if loser != nil {
		s.cat.images[loser.ID] = loser
	}
	if cur != nil {
		s.cat.images[id] = next
		for _, ref := range next.refs() {
			s.cat.byRef[ref] = id
		}
	} else {
		s.cat.insert(next)
	}
	return s.imageOf(next), true, nil
}

// addRefs adds the tag (if any) and the repo digest of a pull to rec and
// reports whether anything was new.
func addRefs(rec *record, r Reference, top string) bool {
	added := false
	if r.Tag != "" && !slices.Contains(rec.RepoTags, r.String()) {
		rec.RepoTags = append(rec.RepoTags, r.String())
		added = true
	}
	if repoDigest := r.Name() + "@" + top; !slices.Contains(rec.RepoDigests, repoDigest) {
		rec.RepoDigests = append(rec.RepoDigests, repoDigest)
		added = true
	}
	return added
}

func (p *puller) fetchConfig(ctx context.Context) error {
	desc := p.manifest.Config
	data, err := p.blobDocument(ctx, desc, p.s.cfg.Limits.ConfigBytes)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := json.Unmarshal(data, &p.config); err != nil {
		return invalid("config %s is not an image config: %v", desc.Digest, err)
	}
	if err := checkConfig(&p.config, &p.manifest); err != nil {
		return err
	}
	p.docs = append(p.docs, document{data: data, digest: string(desc.Digest)})
	return nil
}
