package shim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestAppendLogLine(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC)
	for _, tc := range []struct {
		name, in string
		partial  bool
		want     string
	}{
		{"full", "hello\n", false, "2025-01-02T03:04:05.0000006Z stdout F hello\n"},
		{"tty", "hello\r\n", false, "2025-01-02T03:04:05.0000006Z stdout F hello\n"},
		{"partial", "hel", true, "2025-01-02T03:04:05.0000006Z stdout P hel\n"},
		{"last line without newline", "bye", false, "2025-01-02T03:04:05.0000006Z stdout F bye\n"},
		{"empty line", "\n", false, "2025-01-02T03:04:05.0000006Z stdout F \n"},
	} {
		if got := string(appendLogLine(nil, now, "stdout", []byte(tc.in), tc.partial)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestCopyLogSplitsLongLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.log")
	l, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	long := strings.Repeat("x", 2*maxLogLine+5)
	copyLog(strings.NewReader("a\n"+long+"\nb"), "stderr", l)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		f := strings.SplitN(line, " ", 4)
		if f[1] != "stderr" {
			t.Fatalf("stream in %q", line)
		}
		got = append(got, f[2]+":"+f[3][:min(len(f[3]), 3)]+":"+string(rune('0'+len(f[3])/maxLogLine)))
	}
	want := []string{"F:a:0", "P:xxx:1", "P:xxx:1", "F:xxx:0", "F:b:0"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestOpenLogMissingDir(t *testing.T) {
	if _, err := openLog(filepath.Join(t.TempDir(), "nope", "c.log")); err == nil {
		t.Error("want an error for a missing directory")
	}
}

func logLines(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		t.Errorf("%s ends in a torn line: %q", path, raw[max(0, len(raw)-40):])
	}
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.SplitN(l, " ", 4)
		if len(f) != 4 || f[1] != "stdout" || f[2] != "F" {
			t.Errorf("%s: not a CRI log line: %q", path, l)
			continue
		}
		out = append(out, f[3])
	}
	return out
}

func writeLine(l *logFile, s string) {
	l.write(appendLogLine(nil, time.Now(), "stdout", []byte(s+"\n"), false))
}

// A reopen that cannot open the path (kubelet renamed the file away, the
// directory is gone) keeps writing to the old file: kubelet renames it back
// and retries at its next rotation.
func TestReopenFailureKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	logs, away := filepath.Join(dir, "logs"), filepath.Join(dir, "away")
	if err := os.Mkdir(logs, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(logs, "c.log")
	l, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	writeLine(l, "a")
	if err := os.Rename(logs, away); err != nil {
		t.Fatal(err)
	}
	if err := l.reopen(); err == nil {
		t.Fatal("reopen with the directory gone: want an error")
	}
	writeLine(l, "b")
	if err := os.Rename(away, logs); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := l.reopen(); err != nil {
		t.Fatal(err)
	}
	writeLine(l, "c")
	if got := strings.Join(logLines(t, path+".1"), ","); got != "a,b" {
		t.Errorf("rotated file: %q, want a,b", got)
	}
	if got := strings.Join(logLines(t, path), ","); got != "c" {
		t.Errorf("new file: %q, want c", got)
	}
	l.close()
	if err := l.reopen(); err != nil || l.f != nil {
		t.Errorf("reopen after close: %v, file %v: want nothing opened", err, l.f)
	}
}

// A full disk drops whole batches, never leaves a torn line, and writing
// resumes once space is freed.
func TestLogWriteDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test mounts a tmpfs: run it as root, as make test does")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=16k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(mnt, unix.MNT_DETACH) })
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 8<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(mnt, "c.log")
	l, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	// Batches of 7 lines of ~150 bytes: never a page multiple, so the write
	// that fills the disk is cut mid-line.
	var batch []byte
	for i := range 7 {
		batch = appendLogLine(batch, time.Now(), "stdout", []byte(strings.Repeat("x", 100+i)+"\n"), false)
	}
	for range 20 {
		l.write(batch)
	}
	if l.dropped == 0 {
		t.Fatal("20 batches into 8 KiB: nothing dropped")
	}
	if n := len(logLines(t, path)); n == 0 || n%7 != 0 {
		t.Errorf("%d lines on the full disk: want whole batches", n)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	writeLine(l, "after")
	lines := logLines(t, path)
	if lines[len(lines)-1] != "after" || l.dropped != 0 {
		t.Errorf("after freeing space: last line %q, dropped %d", lines[len(lines)-1], l.dropped)
	}
}
