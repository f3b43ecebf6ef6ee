package testregistry

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"

	"github.com/google/go-containerregistry/pkg/compression"
)

// benchmarks are the images for pull benchmarks: data only, no program.
// docker.io/nodeagent-bench/NAME:gzip and :zstd carry the same layers
// compressed both ways, in OCI media types (zstd exists only there). Every
// layer is unique to its image, so a pull fetches every blob.
var benchmarks = []struct {
	name      string
	layers    int
	layerSize int
}{
	{name: "layers5", layers: 5, layerSize: 8 << 20},
	{name: "layers20", layers: 20, layerSize: 5 << 19},
}

// benchSpecs builds the benchmark images of one entry of benchmarks.
func benchSpecs(name string, layers, layerSize int) ([]imageSpec, error) {
	archives := make([][]byte, layers)
	for i := range archives {
		var err error
		if archives[i], err = benchTree(fmt.Sprintf("%s-%d", name, i), layerSize, i%2 == 1).tar(); err != nil {
			return nil, err
		}
	}
	var specs []imageSpec
	for _, c := range []compression.Compression{compression.GZip, compression.ZStd} {
		s := imageSpec{refs: []string{"docker.io/nodeagent-bench/" + name + ":" + string(c)}, oci: true}
		for _, archive := range archives {
			l, err := newLayer(archive, c)
			if err != nil {
				return nil, err
			}
			s.layers = append(s.layers, l)
		}
		specs = append(specs, s)
	}
	return specs, nil
}

// benchTree returns a layer's content of about size bytes, generated from a
// PRNG seeded with the layer's name so that every build gives the same
// bytes. Most of it is one file of 7-bit random bytes, which compress
// little and cost real work to decompress. With manySmall, about a megabyte
// is instead spread over 512 small files, so unpacking also pays per file.
func benchTree(seed string, size int, manySmall bool) tree {
	rng := rand.NewChaCha8(sha256.Sum256([]byte(seed)))
	random := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rng.Read(b) // never fails
		for i := range b {
			b[i] &= 0x7f
		}
		return b
	}
	t := tree{}
	if manySmall {
		for i := range 512 {
			n := 512 + int(rng.Uint64()%3584)
			t.file(fmt.Sprintf("data/%s/%02d/%03d", seed, i%16, i), 0o644, random(n))
			size -= n
		}
	}
	t.file("data/"+seed+".bin", 0o644, random(size))
	return t
}
