package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// followInterval is how often -f looks for new lines (and for rotation).
const followInterval = 200 * time.Millisecond

func logsCommand(g *globals) *cobra.Command {
	var o logOptions
	cmd := &cobra.Command{
		Use:   "logs CONTAINER",
		Short: "Print a container's logs, read from its CRI log file",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cctx, cancel := context.WithTimeout(ctx, g.timeout)
			defer cancel()
			rt, err := g.runtime(cctx)
			if err != nil {
				return err
			}
			c, err := resolveContainer(cctx, rt, args[0])
			if err != nil {
				return err
			}
			st, err := rt.ContainerStatus(cctx, c.Id, false)
			if err != nil {
				return err
			}
			path := st.GetStatus().GetLogPath()
			if path == "" {
				return fmt.Errorf("container %s has no log path", shortID(c.Id))
			}
			o.now = time.Now()
			w := logWriter{stdout: cmd.OutOrStdout(), stderr: cmd.ErrOrStderr(), timestamps: o.timestamps}
			off, err := printLogFile(path, o, w)
			if err != nil || !o.follow {
				return err
			}
			return followLog(ctx, path, off, w, running(rt, c.Id, g.timeout))
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.follow, "follow", "f", false, "keep printing new lines until the container exits")
	f.IntVar(&o.tail, "tail", -1, "print only the last N lines (-1: all)")
	f.DurationVar(&o.since, "since", 0, "print only lines newer than this (e.g. 10m)")
	f.BoolVarP(&o.timestamps, "timestamps", "t", false, "prefix each line with its timestamp")
	return cmd
}

type logOptions struct {
	follow, timestamps bool
	tail               int
	since              time.Duration
	now                time.Time
}

// logLine is one line of a CRI log file: "<RFC3339Nano> <stream> <P|F> <content>".
// P marks a partial line, continued by the next one of the same stream.
type logLine struct {
	time    time.Time
	stream  string
	partial bool
	content []byte
}

// parseLogLine parses one line without its newline.
func parseLogLine(b []byte) (logLine, error) {
	fields := bytes.SplitN(b, []byte{' '}, 4)
	if len(fields) < 3 {
		return logLine{}, fmt.Errorf("not a CRI log line: %q", b)
	}
	ts, err := time.Parse(time.RFC3339Nano, string(fields[0]))
	if err != nil {
		return logLine{}, fmt.Errorf("bad timestamp in log line %q", b)
	}
	l := logLine{time: ts, stream: string(fields[1])}
	if l.stream != "stdout" && l.stream != "stderr" {
		return logLine{}, fmt.Errorf("bad stream in log line %q", b)
	}
	switch string(fields[2]) {
	case "P":
		l.partial = true
	case "F":
	default:
		return logLine{}, fmt.Errorf("bad tag in log line %q", b)
	}
	if len(fields) == 4 {
		l.content = fields[3]
	}
	return l, nil
}

// joiner glues partial lines back into whole lines, per stream.
type joiner struct{ pending map[string][]byte }

func (j *joiner) add(l logLine) (logLine, bool) {
	if j.pending == nil {
		j.pending = map[string][]byte{}
	}
	j.pending[l.stream] = append(j.pending[l.stream], l.content...)
	if l.partial {
		return logLine{}, false
	}
	l.content, j.pending[l.stream] = j.pending[l.stream], nil
	return l, true
}

// readLog returns the whole lines of r that pass the options, and the
// number of bytes consumed (up to the last complete line). Lines that are
// not CRI lines are skipped: a torn write must not stop the reader.
func readLog(r io.Reader, o logOptions) ([]logLine, int64, error) {
	var out []logLine
	var j joiner
	var off int64
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		b, err := br.ReadBytes('\n')
		if errors.Is(err, io.EOF) {
			break // an incomplete last line is read again when followed
		}
		if err != nil {
			return nil, off, err
		}
		off += int64(len(b))
		l, perr := parseLogLine(bytes.TrimSuffix(b, []byte{'\n'}))
		if perr != nil {
			continue
		}
		if whole, ok := j.add(l); ok && (o.since == 0 || !whole.time.Before(o.now.Add(-o.since))) {
			out = append(out, whole)
		}
	}
	if o.tail >= 0 && len(out) > o.tail {
		out = out[len(out)-o.tail:]
	}
	return out, off, nil
}

type logWriter struct {
	stdout, stderr io.Writer
	timestamps     bool
}

func (w logWriter) write(l logLine) {
	out := w.stdout
	if l.stream == "stderr" {
		out = w.stderr
	}
	if w.timestamps {
		fmt.Fprintf(out, "%s %s\n", l.time.Format(time.RFC3339Nano), l.content)
		return
	}
	fmt.Fprintf(out, "%s\n", l.content)
}

func printLogFile(path string, o logOptions, w logWriter) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("open log: %w", err)
	}
	defer f.Close()
	lines, off, err := readLog(f, o)
	for _, l := range lines {
		w.write(l)
	}
	return off, err
}

// followLog prints lines appended after off until alive reports the
// container gone and nothing new arrived. A file that shrank or was
// replaced has been rotated: it is read again from its start.
func followLog(ctx context.Context, path string, off int64, w logWriter, alive func() bool) error {
	var ino uint64
	final := false
	if fi, err := os.Stat(path); err == nil {
		ino = fi.Sys().(*syscall.Stat_t).Ino
	}
	for {
		fi, err := os.Stat(path)
		if err == nil {
			if st := fi.Sys().(*syscall.Stat_t); st.Ino != ino || fi.Size() < off {
				ino, off = st.Ino, 0
			}
			if fi.Size() > off {
				n, err := printFrom(path, off, w)
				if err != nil {
					return err
				}
				off += n
				continue
			}
		}
		if !alive() {
			// One more pass: lines written as it exited.
			if final {
				return nil
			}
			final = true
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(followInterval):
		}
	}
}

func printFrom(path string, off int64, w logWriter) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return 0, err
	}
	lines, n, err := readLog(f, logOptions{tail: -1})
	for _, l := range lines {
		w.write(l)
	}
	return n, err
}

// running reports whether the container still runs, asking at most once a
// second.
func running(rt internalapi.RuntimeService, id string, timeout time.Duration) func() bool {
	var last time.Time
	alive := true
	return func() bool {
		if time.Since(last) < time.Second {
			return alive
		}
		last = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		st, err := rt.ContainerStatus(ctx, id, false)
		alive = err == nil && st.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING
		return alive
	}
}
