package testregistry

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const catalogFile = "catalog.json"

// build writes every image into an OCI layout at dir, and the references it
// serves them under into dir/catalog.json. Each artifact is written as soon
// as it is assembled so that only one benchmark's layers are in memory.
func build(ctx context.Context, dir, deb string) ([]Image, error) {
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return nil, err
	}
	decoy, err := treeLayer(decoyTree())
	if err != nil {
		return nil, err
	}
	var images []Image
	add := func(specs []imageSpec) error {
		for _, s := range specs {
			if err := ctx.Err(); err != nil {
				return err
			}
			a, err := assemble(s, decoy)
			if err != nil {
				return err
			}
			written, err := write(p, a)
			if err != nil {
				return err
			}
			images = append(images, written...)
		}
		return nil
	}
	layers, err := critestLayers(ctx, deb)
	if err != nil {
		return nil, err
	}
	if err := add(critestSpecs(layers)); err != nil {
		return nil, err
	}
	for _, b := range benchmarks {
		specs, err := benchSpecs(b.name, b.layers, b.layerSize)
		if err != nil {
			return nil, err
		}
		if err := add(specs); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(images, func(a, b Image) int { return strings.Compare(a.Reference, b.Reference) })
	catalog, err := json.MarshalIndent(images, "", "\t")
	if err != nil {
		return nil, err
	}
	return images, os.WriteFile(filepath.Join(dir, catalogFile), catalog, 0o644)
}

// write stores an artifact's blobs in the layout and returns its catalog
// entries, one per reference.
func write(p layout.Path, a artifact) ([]Image, error) {
	var m interface {
		Digest() (v1.Hash, error)
		MediaType() (types.MediaType, error)
	}
	var err error
	if a.index != nil {
		m, err = a.index, p.WriteIndex(a.index)
	} else {
		m, err = a.image, p.WriteImage(a.image)
	}
	if err != nil {
		return nil, err
	}
	digest, err := m.Digest()
	if err != nil {
		return nil, err
	}
	mediaType, err := m.MediaType()
	if err != nil {
		return nil, err
	}
	var images []Image
	for _, ref := range a.refs {
		tag, err := name.NewTag(ref, name.StrictValidation)
		if err != nil {
			return nil, err
		}
		images = append(images, Image{
			Reference:  ref,
			Repository: tag.RepositoryStr(),
			Tag:        tag.TagStr(),
			Digest:     digest,
			MediaType:  mediaType,
			ID:         a.id,
		})
	}
	return images, nil
}

func readCatalog(dir string) ([]Image, error) {
	data, err := os.ReadFile(filepath.Join(dir, catalogFile))
	if err != nil {
		return nil, err
	}
	var images []Image
	return images, json.Unmarshal(data, &images)
}
