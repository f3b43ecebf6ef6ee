package shim

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"
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
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("log path %q: directory %q does not exist: %w", l.path, filepath.Dir(l.path), errdefs.ErrInvalidArgument)
	}
	if err != nil {
		return fmt.Errorf("log path %q: %w", l.path, err)
	}
	l.f = f
	return nil
}

// write appends b. A failing log disk must not stop the container, so write
// errors are dropped (kubelet sees the gap).
func (l *logFile) write(b []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		_, _ = l.f.Write(b)
	}
}

// reopen closes the file and opens the path again: kubelet renamed the old
// file away and wants output in a new one.
func (l *logFile) reopen() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.path == "" {
		return nil
	}
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
	return l.open()
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
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
