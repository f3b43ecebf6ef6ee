package unpack

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// benchLayer is a deterministic layer shaped like a distro base: many small
// files spread over a few hundred directories.
func benchLayer(b testing.TB, files int) []byte {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	ents := make([]ent, 0, files+files/50)
	for i := 0; i < files; i++ {
		if i%50 == 0 {
			ents = append(ents, dir(fmt.Sprintf("d%03d/", i/50), 0o755))
		}
		body := make([]byte, rng.IntN(8192))
		for j := range body {
			body[j] = byte(rng.IntN(256))
		}
		ents = append(ents, file(fmt.Sprintf("d%03d/f%05d", i/50, i), string(body), 0o644))
	}
	return tarOf(b, ents...)
}

// BenchmarkApply measures files/s of Apply; BenchmarkTarX is the floor:
// GNU tar extracting the same layer (same-owner, as root).
func BenchmarkApply(b *testing.B) {
	requireRoot(b)
	layer := benchLayer(b, 10000)
	base := b.TempDir()
	b.SetBytes(int64(len(layer)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(base, fmt.Sprint(i))
		os.Mkdir(dir, 0o755)
		if _, err := Apply(context.Background(), dir, bytes.NewReader(layer), Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "files/s")
}

func BenchmarkTarX(b *testing.B) {
	requireRoot(b)
	layer := benchLayer(b, 10000)
	base := b.TempDir()
	b.SetBytes(int64(len(layer)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(base, fmt.Sprint(i))
		os.Mkdir(dir, 0o755)
		cmd := exec.Command("tar", "-x", "-p", "-C", dir)
		cmd.Stdin = bytes.NewReader(layer)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(10000*b.N)/b.Elapsed().Seconds(), "files/s")
}
