package unpack

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestCompareWithTar alternates Apply and GNU tar on the same layer so both
// see the same machine load (benchmarks run one after the other do not).
// Opt-in: UNPACK_COMPARE=1.
func TestCompareWithTar(t *testing.T) {
	if os.Getenv("UNPACK_COMPARE") == "" {
		t.Skip("set UNPACK_COMPARE=1")
	}
	requireRoot(t)
	const files = 10000
	layer := benchLayer(t, files)
	base := t.TempDir()
	var apply, tarx time.Duration
	for i := range 6 {
		dir := filepath.Join(base, fmt.Sprint(i))
		os.Mkdir(dir, 0o755)
		start := time.Now()
		if i%2 == 0 {
			if _, err := Apply(context.Background(), dir, bytes.NewReader(layer), Options{}); err != nil {
				t.Fatal(err)
			}
			apply += time.Since(start)
		} else {
			cmd := exec.Command("tar", "-x", "-p", "-C", dir)
			cmd.Stdin = bytes.NewReader(layer)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			tarx += time.Since(start)
		}
		os.RemoveAll(dir)
	}
	t.Logf("Apply %.0f files/s, tar -x %.0f files/s", 3*files/apply.Seconds(), 3*files/tarx.Seconds())
}
