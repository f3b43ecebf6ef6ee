package overlay

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestMountRefusesSeparators(t *testing.T) {
	for _, lowers := range [][]string{nil, {"/a:b"}, {"/a,upperdir=/x"}, make([]string, MaxLayers+1)} {
		if err := Mount(t.TempDir(), lowers, "", ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%.40q: err = %v", lowers, err)
		}
	}
}

func TestFits(t *testing.T) {
	long := make([]string, 100)
	for i := range long {
		long[i] = "/var/lib/nodeagent/snapshots/" + strings.Repeat("a", 64) + "/fs"
	}
	if got := Fits(long, 100, 100); got != LowerdirPlus() {
		t.Errorf("Fits(100 long lowers) = %v with lowerdir+ %v", got, LowerdirPlus())
	}
	if !Fits(long[:2], 100, 100) {
		t.Error("two lowers do not fit")
	}
	if Fits(make([]string, MaxLayers+1), 0, 0) {
		t.Error("more than overlayfs' stack limit fits")
	}
}

func TestMountReadOnlyAndUnmount(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := t.TempDir()
	var lowers []string
	for _, name := range []string{"top", "bottom"} {
		l := filepath.Join(dir, name)
		if err := os.MkdirAll(l, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(l, name), []byte(name), 0o644)
		lowers = append(lowers, l)
	}
	target := filepath.Join(dir, "mnt")
	os.Mkdir(target, 0o755)
	if err := Mount(target, lowers, "", ""); err != nil {
		t.Fatal(err)
	}
	defer Unmount(target)
	if _, err := os.Stat(filepath.Join(target, "bottom")); err != nil {
		t.Error(err)
	}
	if err := os.WriteFile(filepath.Join(target, "new"), nil, 0o644); err == nil {
		t.Error("read-only overlay accepted a write")
	}
	if err := Unmount(target); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(target); err != nil {
		t.Errorf("second unmount: %v", err)
	}
}
