package shim

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
