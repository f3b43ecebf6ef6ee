package imagesvc

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

const (
	mediaTypeOCIIndex       = ocispec.MediaTypeImageIndex
	mediaTypeOCIManifest    = ocispec.MediaTypeImageManifest
	mediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	mediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerSchema1  = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeDockerSigned1  = "application/vnd.docker.distribution.manifest.v1+prettyjws"
	mediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
)

// layerMediaTypes are the layer types we unpack. The compression is taken
// from the stream's magic bytes, as containerd does, so a mislabelled but
// valid layer still unpacks; the type only has to be a filesystem layer.
var layerMediaTypes = map[string]bool{
	ocispec.MediaTypeImageLayer:                                 true,
	ocispec.MediaTypeImageLayerGzip:                             true,
	ocispec.MediaTypeImageLayerZstd:                             true,
	ocispec.MediaTypeImageLayerNonDistributable:                 true, //nolint:staticcheck // still in the wild
	ocispec.MediaTypeImageLayerNonDistributableGzip:             true, //nolint:staticcheck
	ocispec.MediaTypeImageLayerNonDistributableZstd:             true, //nolint:staticcheck
	"application/vnd.docker.image.rootfs.diff.tar":              true,
	"application/vnd.docker.image.rootfs.diff.tar.gzip":         true,
	"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": true,
}

type docKind int

const (
	kindManifest docKind = iota + 1
	kindIndex
)

// kindOf decides what a document is. The mediaType inside the document is
// authoritative when present (it is covered by the digest, the header is
// not); it must not contradict the structure.
func kindOf(d document) (docKind, error) {
	var probe struct {
		SchemaVersion int               `json:"schemaVersion"`
		MediaType     string            `json:"mediaType"`
		Manifests     json.RawMessage   `json:"manifests"`
		Layers        json.RawMessage   `json:"layers"`
		FSLayers      []json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(d.data, &probe); err != nil {
		return 0, invalid("manifest %s is not JSON: %v", d.digest, err)
	}
	mt := probe.MediaType
	if mt == "" {
		mt, _, _ = strings.Cut(d.mediaType, ";")
		mt = strings.TrimSpace(mt)
	}
	switch {
	case mt == mediaTypeDockerSchema1 || mt == mediaTypeDockerSigned1 || probe.SchemaVersion == 1 || probe.FSLayers != nil:
		return 0, fmt.Errorf("manifest %s: Docker schema 1 is not supported: %w", d.digest, errdefs.ErrNotImplemented)
	case probe.SchemaVersion != 2:
		return 0, invalid("manifest %s: schemaVersion %d", d.digest, probe.SchemaVersion)
	case probe.Manifests != nil && probe.Layers != nil:
		return 0, invalid("manifest %s is both an index and a manifest", d.digest)
	case mt == mediaTypeOCIIndex || mt == mediaTypeDockerList:
		if probe.Layers != nil {
			return 0, invalid("index %s has layers", d.digest)
		}
		return kindIndex, nil
	case mt == mediaTypeOCIManifest || mt == mediaTypeDockerManifest:
		if probe.Manifests != nil {
			return 0, invalid("manifest %s lists manifests", d.digest)
		}
		return kindManifest, nil
	case mt == "" && probe.Manifests != nil:
		return kindIndex, nil
	case mt == "" && probe.Layers != nil:
		return kindManifest, nil
	}
	return 0, fmt.Errorf("manifest %s: media type %q is not an image: %w", d.digest, mt, errdefs.ErrNotImplemented)
}

// checkManifest validates a manifest against our limits before anything
// it names is fetched.
func checkManifest(m *ocispec.Manifest, lim Limits) error {
	c := m.Config
	if c.MediaType != ocispec.MediaTypeImageConfig && c.MediaType != mediaTypeDockerConfig {
		return fmt.Errorf("config media type %q is not a container image: %w", c.MediaType, errdefs.ErrNotImplemented)
	}
	if err := checkDescriptor(c, lim.ConfigBytes, "config"); err != nil {
		return err
	}
	if len(m.Layers) == 0 {
		return invalid("image has no layers")
	}
	if len(m.Layers) > lim.LayersPerImage {
		return fmt.Errorf("image has %d layers, limit %d: %w", len(m.Layers), lim.LayersPerImage, errdefs.ErrResourceExhausted)
	}
	for i, l := range m.Layers {
		if !layerMediaTypes[l.MediaType] {
			return fmt.Errorf("layer %d: media type %q is not supported: %w", i, l.MediaType, errdefs.ErrNotImplemented)
		}
		if err := checkDescriptor(l, lim.LayerBlobBytes, fmt.Sprintf("layer %d", i)); err != nil {
			return err
		}
	}
	return nil
}

func checkDescriptor(d ocispec.Descriptor, max int64, what string) error {
	if !sha256Re.MatchString(string(d.Digest)) {
		return invalid("%s digest %q is not sha256", what, d.Digest)
	}
	if d.Size < 0 {
		return invalid("%s size %d", what, d.Size)
	}
	if d.Size > max {
		return fmt.Errorf("%s is %d bytes, limit %d: %w", what, d.Size, max, errdefs.ErrResourceExhausted)
	}
	return nil
}

// checkConfig makes sure the config describes the manifest's layers and
// this node's platform: a wrong-architecture image is never accepted, even
// when a registry serves it without an index.
func checkConfig(cfg *ocispec.Image, m *ocispec.Manifest) error {
	if cfg.RootFS.Type != "layers" {
		return invalid("config rootfs type %q", cfg.RootFS.Type)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return invalid("config lists %d layers, manifest %d", len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	for _, d := range cfg.RootFS.DiffIDs {
		if !sha256Re.MatchString(string(d)) {
			return invalid("diff id %q is not sha256", d)
		}
	}
	if (cfg.OS != "" && cfg.OS != "linux") || (cfg.Architecture != "" && cfg.Architecture != runtime.GOARCH) {
		return fmt.Errorf("image is for %s/%s, this node is linux/%s: %w", cfg.OS, cfg.Architecture, runtime.GOARCH, errdefs.ErrNotFound)
	}
	return nil
}

// selectPlatform picks this node's manifest from an index.
func selectPlatform(idx *ocispec.Index) (ocispec.Descriptor, error) {
	best, bestScore := -1, 0
	var seen []string
	for i, d := range idx.Manifests {
		score := 1 // no platform: a candidate, checked against its config later
		if p := d.Platform; p != nil {
			seen = append(seen, p.OS+"/"+p.Architecture+variantSuffix(p.Variant))
			score = platformScore(p)
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return ocispec.Descriptor{}, fmt.Errorf("no manifest for linux/%s in index (it has %s): %w", runtime.GOARCH, strings.Join(seen, ", "), errdefs.ErrNotFound)
	}
	return idx.Manifests[best], nil
}

func variantSuffix(v string) string {
	if v == "" {
		return ""
	}
	return "/" + v
}

// platformScore ranks a platform for this node: 0 = unusable.
func platformScore(p *ocispec.Platform) int {
	if p.OS != "linux" || p.Architecture != runtime.GOARCH {
		return 0
	}
	ranks := map[string][]string{
		"amd64": {"", "v1"},
		"arm64": {"", "v8"},
		"arm":   {"v7", "", "v6", "v5"},
	}[runtime.GOARCH]
	if ranks == nil {
		return 2
	}
	for i, v := range ranks {
		if p.Variant == v {
			return 2 + len(ranks) - i
		}
	}
	return 0
}
