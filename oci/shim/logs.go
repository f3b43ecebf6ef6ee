package shim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// maxLogLine is the longest CRI log line content; longer lines are split into
// partial (P) pieces, as kubelet's parser and containerd do.
const maxLogLine = 16 << 10

// flushAt bounds how much formatted output is batched into one write.
const flushAt = 64 << 10

// logFile is a container's CRI log file, shared by its stdout and stderr
// copiers and reopened under them when kubelet rotates it.
type logFile struct {
	mu   sync.Mutex
	path string
	f    *os.File // nil: output discarded
	// dropped counts the bytes lost since writes started failing (0: the
	// last write succeeded).
	dropped int64
	closed  bool // the container is deleted: a late reopen opens nothing
}

// openLog opens path for appending. An empty path discards output.
func openLog(path string) (*logFile, error) {
	l := &logFile{path: path}
	if path == "" {
		return l, nil
	}
	if err := l.open(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *logFile) open() error {
	f, err := openAppend(l.path)
	if err != nil {
		return err
	}
	l.f = f
	return nil
}

func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("log path %q: directory %q does not exist: %w", path, filepath.Dir(path), errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return nil, fmt.Errorf("log path %q: %w", path, err)
	}
	return f, nil
}

// write appends b, a batch of whole CRI lines.
//
// A failing log disk (full, read-only, gone) must not stop the container:
// like containerd's CRI logger, the batch is dropped and the output keeps
// being drained, so the container never blocks on its stdout; kubelet sees a
// gap. The file holds only whole lines: a write cut short (the disk filled
// mid-batch) is truncated back to where it began, and while writes fail each
// batch first reserves its space, so that it is written whole or not at all
// and a reader never meets a torn line that a truncate is about to undo.
// Writing resumes by itself once space is freed, or on the file
// ReopenContainerLog opens.
func (l *logFile) write(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	if l.dropped > 0 && !l.reserve(len(b)) {
		l.dropped += int64(len(b))
		return
	}
	n, err := l.f.Write(b)
	if err == nil {
		if l.dropped > 0 {
			slog.Info("container log writable again", "path", l.path, "droppedBytes", l.dropped)
			l.dropped = 0
		}
		return
	}
	if n > 0 {
		// O_APPEND and one writer (this one, under mu): the last n bytes
		// of the file are the torn batch.
		if fi, serr := l.f.Stat(); serr == nil {
			_ = l.f.Truncate(fi.Size() - int64(n))
		}
	}
	if l.dropped == 0 {
		slog.Warn("container log write failed: dropping output until writes succeed", "path", l.path, "err", err)
	}
	l.dropped += int64(len(b))
}

// reserve allocates n bytes past the end of the file without changing its
// size (FALLOC_FL_KEEP_SIZE), so that an append of n bytes cannot run out
// of space. A file system without fallocate reserves nothing and says yes:
// the write then finds out, as it would anyway.
func (l *logFile) reserve(n int) bool {
	fi, err := l.f.Stat()
	if err != nil {
		return false
	}
	err = unix.Fallocate(int(l.f.Fd()), unix.FALLOC_FL_KEEP_SIZE, fi.Size(), int64(n))
	return err == nil || errors.Is(err, unix.EOPNOTSUPP)
}

// reopen opens the path again and swaps the new file in: kubelet renamed the
// old file away and wants output in a new one. The new file is opened before
// the old one is closed: if the open fails, kubelet renames the old file back
// to the path and retries at its next rotation, and output must still be
// going to it meanwhile rather than to nowhere.
func (l *logFile) reopen() error {
	if l.path == "" {
		return nil
	}
	f, err := openAppend(l.path)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		f.Close()
		return nil
	}
	if l.f != nil {
		l.f.Close()
	}
	l.f = f
	return nil
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// copyLog formats what r yields as CRI log lines of stream ("stdout" or
// "stderr") into l until r ends:
//
//	<RFC3339Nano time> <stream> <P|F> <content>\n
//
// A line is F(ull) when it ended with a newline (or the stream ended), P(artial)
// when it was cut at maxLogLine. Output is batched while more input is already
// buffered, and written as soon as the input runs dry.
func copyLog(r io.Reader, stream string, l *logFile) {
	br := bufio.NewReaderSize(r, maxLogLine)
	out := make([]byte, 0, 4096)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			out = appendLogLine(out, time.Now(), stream, line, err == bufio.ErrBufferFull)
		}
		if err != nil && err != bufio.ErrBufferFull {
			l.write(out)
			return
		}
		if br.Buffered() == 0 || len(out) >= flushAt {
			l.write(out)
			out = out[:0]
		}
	}
}

// appendLogLine appends one CRI log line. A tty ends lines with \r\n; the \r
// is not content.
func appendLogLine(out []byte, now time.Time, stream string, line []byte, partial bool) []byte {
	tag := byte('F')
	if partial {
		tag = 'P'
	} else if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	out = now.AppendFormat(out, time.RFC3339Nano)
	out = append(out, ' ')
	out = append(out, stream...)
	out = append(out, ' ', tag, ' ')
	out = append(out, line...)
	return append(out, '\n')
}
