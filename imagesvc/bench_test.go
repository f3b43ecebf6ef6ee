package imagesvc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/compression"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/nodeagent/nodeagent/imagesvc/unpack"
)

// benchFiles returns a deterministic layer shaped like a distro or
// application layer: mostly small files (0-16 KiB, half of it text-like so
// gzip has work to do) in directories of 50.
func benchFiles(seed uint64, files int) []tent {
	rng := rand.New(rand.NewPCG(seed, 7))
	ents := make([]tent, 0, files+files/50)
	for i := range files {
		if i%50 == 0 {
			ents = append(ents, tdir(fmt.Sprintf("s%d/d%03d/", seed, i/50)))
		}
		body := make([]byte, rng.IntN(16<<10))
		for j := range body {
			if j%2 == 0 {
				body[j] = byte(rng.IntN(256))
			} else {
				body[j] = 'a' + byte(rng.IntN(4))
			}
		}
		ents = append(ents, tfile(fmt.Sprintf("s%d/d%03d/f%05d", seed, i/50, i), string(body)))
	}
	return ents
}

type benchImage struct {
	ref        string
	compressed int64
	files      int
}

// pushBenchImage pushes an image of n layers of files files each.
func pushBenchImage(b *testing.B, tr *testRegistry, repo string, n, files int) benchImage {
	var layers []v1.Layer
	var size int64
	for i := range n {
		l := testLayer(b, nil, benchFiles(uint64(i+1), files)...)
		sz, err := l.Size()
		if err != nil {
			b.Fatal(err)
		}
		size += sz
		layers = append(layers, l)
	}
	return benchImage{ref: tr.push(b, repo, testImage(b, v1.Config{}, layers...)), compressed: size, files: n * files}
}

// BenchmarkPullCold: a 4-layer image (4 x 3000 files, ~24 MiB compressed)
// into an empty root. MB/s is compressed bytes per second.
func BenchmarkPullCold(b *testing.B) {
	requireRoot(b)
	tr := newTestRegistry(b)
	img := pushBenchImage(b, tr, "cold:1", 4, 3000)
	b.SetBytes(img.compressed)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s, _ := testService(b, Config{}, tr.host)
		b.StartTimer()
		if _, err := s.Pull(context.Background(), img.ref, nil); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(s.cfg.Root)
		b.StartTimer()
	}
	b.ReportMetric(float64(img.files*b.N)/b.Elapsed().Seconds(), "files/s")
}

// BenchmarkPullWarm: the image is present; a pull by tag costs one manifest
// request and no blob.
func BenchmarkPullWarm(b *testing.B) {
	tr := newTestRegistry(b)
	img := pushBenchImage(b, tr, "warm:1", 2, 50)
	s, _ := testService(b, Config{}, tr.host)
	if _, err := s.Pull(context.Background(), img.ref, nil); err != nil {
		b.Fatal(err)
	}
	before, _ := tr.blobGets()
	b.ResetTimer()
	for range b.N {
		if _, err := s.Pull(context.Background(), img.ref, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if after, _ := tr.blobGets(); after != before {
		b.Fatalf("warm pulls fetched %d blobs", after-before)
	}
}

// BenchmarkPullConcurrent10: ten pulls of one image at once; reports the
// registry's blob requests per distinct blob (1.0 = each fetched once).
func BenchmarkPullConcurrent10(b *testing.B) {
	requireRoot(b)
	tr := newTestRegistry(b)
	img := pushBenchImage(b, tr, "conc:1", 4, 500)
	b.SetBytes(img.compressed)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		s, _ := testService(b, Config{}, tr.host)
		tr.mu.Lock()
		clear(tr.blobs)
		tr.mu.Unlock()
		b.StartTimer()
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				if _, err := s.Pull(context.Background(), img.ref, nil); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		total, per := tr.blobGets()
		b.ReportMetric(float64(total)/float64(len(per)), "GETs/blob")
		os.RemoveAll(s.cfg.Root)
		b.StartTimer()
	}
}

// BenchmarkLayerPipeline is one gzip layer through the whole pipeline
// (digest, gunzip, diff digest, unpack); BenchmarkTarXzf is GNU tar's
// floor for the same blob.
func BenchmarkLayerPipeline(b *testing.B) {
	requireRoot(b)
	blob, files := benchBlob(b)
	base := b.TempDir()
	b.SetBytes(int64(len(blob)))
	b.ResetTimer()
	for i := range b.N {
		dir := filepath.Join(base, fmt.Sprint(i))
		os.Mkdir(dir, 0o755)
		v := &verifier{r: bytes.NewReader(blob), h: sha256.New(), size: int64(len(blob))}
		dec, err := decompress(v)
		if err != nil {
			b.Fatal(err)
		}
		diff := sha256.New()
		if _, err := unpack.Apply(context.Background(), dir, io.TeeReader(dec, diff), unpack.Options{}); err != nil {
			b.Fatal(err)
		}
		dec.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
}

func BenchmarkTarXzf(b *testing.B) {
	requireRoot(b)
	blob, files := benchBlob(b)
	base := b.TempDir()
	b.SetBytes(int64(len(blob)))
	b.ResetTimer()
	for i := range b.N {
		dir := filepath.Join(base, fmt.Sprint(i))
		os.Mkdir(dir, 0o755)
		cmd := exec.Command("tar", "-xzp", "-C", dir)
		cmd.Stdin = bytes.NewReader(blob)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(files*b.N)/b.Elapsed().Seconds(), "files/s")
}

func benchBlob(b *testing.B) ([]byte, int) {
	const files = 5000
	return gzipBytes(b, tarBytes(b, benchFiles(1, files)...)), files
}

// manyLayerFiles is one layer of the bench-compare "layers20" shape: about
// 2.5 MiB of 7-bit random bytes in one file, and with manySmall also 512
// small files (unpack then pays per file).
func manyLayerFiles(seed uint64, manySmall bool) []tent {
	rng := rand.New(rand.NewPCG(seed, 11))
	random := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.IntN(128))
		}
		return string(b)
	}
	size := 5 << 19
	var ents []tent
	if manySmall {
		for i := range 512 {
			if i < 16 {
				ents = append(ents, tdir(fmt.Sprintf("data/%d/%02d/", seed, i)))
			}
			n := 512 + rng.IntN(3584)
			ents = append(ents, tfile(fmt.Sprintf("data/%d/%02d/%03d", seed, i%16, i), random(n)))
			size -= n
		}
	}
	return append(ents, tfile(fmt.Sprintf("data/%d.bin", seed), random(size)))
}

// BenchmarkPullCold20 is a cold pull of 20 layers (~50 MiB, 5k files), as
// bench-compare's layers20 image, gzip and zstd: per-layer costs show here.
func BenchmarkPullCold20(b *testing.B) {
	requireRoot(b)
	for _, c := range []compression.Compression{compression.ZStd, compression.GZip} {
		b.Run(string(c), func(b *testing.B) {
			tr := newTestRegistry(b)
			var layers []v1.Layer
			for i := range 20 {
				layers = append(layers, testLayer(b, []tarball.LayerOption{tarball.WithCompression(c)}, manyLayerFiles(uint64(i+1), i%2 == 1)...))
			}
			ref := tr.push(b, "cold20:"+string(c), testImage(b, v1.Config{}, layers...))
			for b.Loop() {
				b.StopTimer()
				s, _ := testService(b, Config{}, tr.host)
				b.StartTimer()
				if _, err := s.Pull(context.Background(), ref, nil); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				os.RemoveAll(s.cfg.Root)
				b.StartTimer()
			}
		})
	}
}
