package testregistry

import (
	"slices"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// An imageSpec describes one image and the references it is served under.
type imageSpec struct {
	refs   []string // as critest writes them
	layers []v1.Layer
	config v1.Config
	index  bool // serve a multi-arch index: linux/amd64 plus a linux/arm64 decoy
	oci    bool // OCI media types instead of Docker's
}

// An artifact is what a spec builds: an image, or an index of images.
type artifact struct {
	refs  []string
	image v1.Image      // set for a single-platform image
	index v1.ImageIndex // set for an index
	id    v1.Hash       // config digest of the linux/amd64 image: the image ID
}

// identityLabel carries a spec's first reference in its config, so that two
// specs never build the same image even when their content is the same: a
// runtime removing one must not remove the other.
const identityLabel = "io.nodeagent.testregistry.image"

var (
	amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}
	arm64 = v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
)

// assemble builds a spec. The arm64 image of an index has the decoy layer on
// top, so that a runtime that picks it is caught by content as well as by its
// config.
func assemble(s imageSpec, decoy v1.Layer) (artifact, error) {
	cfg := s.config
	cfg.Labels = map[string]string{identityLabel: s.refs[0]}
	img, err := image(amd64, s.layers, cfg, s.oci)
	if err != nil {
		return artifact{}, err
	}
	id, err := img.ConfigName()
	if err != nil {
		return artifact{}, err
	}
	if !s.index {
		return artifact{refs: s.refs, image: img, id: id}, nil
	}
	wrong, err := image(arm64, slices.Concat(s.layers, []v1.Layer{decoy}), cfg, s.oci)
	if err != nil {
		return artifact{}, err
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &amd64}},
		mutate.IndexAddendum{Add: wrong, Descriptor: v1.Descriptor{Platform: &arm64}})
	mediaType := types.DockerManifestList
	if s.oci {
		mediaType = types.OCIImageIndex
	}
	return artifact{refs: s.refs, index: mutate.IndexMediaType(idx, mediaType), id: id}, nil
}

// image builds a single-platform image. Layers keep their own (OCI) media
// type in an OCI image and are declared as Docker layers otherwise; both are
// gzip, so the blob is the same.
func image(p v1.Platform, layers []v1.Layer, cfg v1.Config, oci bool) (v1.Image, error) {
	img := empty.Image
	if oci {
		img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	}
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: p.Architecture,
		Variant:      p.Variant,
		OS:           p.OS,
		Created:      v1.Time{Time: epoch},
		Config:       cfg,
		RootFS:       v1.RootFS{Type: "layers"},
	})
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, len(layers))
	for i, l := range layers {
		adds[i] = mutate.Addendum{Layer: l, History: v1.History{Created: v1.Time{Time: epoch}}}
		if !oci {
			adds[i].MediaType = types.DockerLayer
		}
	}
	return mutate.Append(img, adds...)
}
