package leakcheck

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLeaksDiff(t *testing.T) {
	before := Snapshot{"mount": {"/a (tmpfs)"}, "process": {"1 x"}}
	after := Snapshot{"mount": {"/a (tmpfs)", "/b (tmpfs)"}, "process": {}}
	got := Leaks(before, after)
	if len(got) != 1 || got[0] != "mount: /b (tmpfs)" {
		t.Errorf("Leaks() = %v", got)
	}
}

// TestSeesRealLeaks makes a real mount and a real process inside the scope and
// checks that the checker reports both, then that cleaning up clears them.
func TestSeesRealLeaks(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	marker := "leakcheck-" + filepath.Base(dir)
	scope := Scope{Dirs: []string{dir}, ProcessMarkers: []string{marker}}
	before := Take(scope)

	mnt := filepath.Join(dir, "m")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "sleep 30 # "+marker)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	leaks := strings.Join(Leaks(before, Take(scope)), "\n")
	for _, want := range []string{"mount: " + mnt + " (tmpfs)", "process: ", marker} {
		if !strings.Contains(leaks, want) {
			t.Errorf("leaks %q do not mention %q", leaks, want)
		}
	}

	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if err := unix.Unmount(mnt, 0); err != nil {
		t.Fatal(err)
	}
	if leaks := Leaks(before, Take(scope)); len(leaks) != 0 {
		t.Errorf("after cleanup: %v", leaks)
	}
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (mounts): run it as root, as make test does")
	}
}
