package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/containerd/errdefs"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/oci"
)

// StreamingOptions configure the exec/attach/port-forward HTTP server.
type StreamingOptions struct {
	// Address and Port to listen on; port 0 picks a free one.
	Address string
	Port    int
	// IdleTimeout closes a stream that carried nothing this long.
	IdleTimeout time.Duration
}

// StartStreaming listens and serves the streaming server whose single-use,
// expiring URLs Exec, Attach and PortForward hand out. It listens before it
// returns, so the URLs name the real port from the first RPC on. stop
// closes the listener; streams in progress end with their clients.
func (s *Server) StartStreaming(o StreamingOptions) (stop func() error, err error) {
	l, err := net.Listen("tcp", net.JoinHostPort(o.Address, strconv.Itoa(o.Port)))
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	cfg := streaming.DefaultConfig
	cfg.Addr = l.Addr().String()
	if o.IdleTimeout > 0 {
		cfg.StreamIdleTimeout = o.IdleTimeout
	}
	stream, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		l.Close()
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	s.stream = stream
	hs := &http.Server{Handler: stream, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Streaming server stopped")
		}
	}()
	klog.InfoS("Serving streams", "address", cfg.Addr)
	return hs.Close, nil
}

// streamer returns the streaming server, which the daemon starts before it
// serves CRI.
func (s *Server) streamer() (streaming.Server, error) {
	if s.stream == nil {
		return nil, fmt.Errorf("streaming server not started: %w", errdefs.ErrUnavailable)
	}
	return s.stream, nil
}

// streamRuntime is what the streaming server calls once a client connected
// to a URL.
type streamRuntime struct{ s *Server }

func (r streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	err := r.s.containers.Exec(ctx, id, cmd, tty, streams(in, out, errOut, resize))
	var exit *oci.ExitError
	if err != nil && !errors.As(err, &exit) {
		klog.InfoS("Exec stream failed", "containerID", id, "err", err)
	}
	return err
}

func (r streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	err := r.s.containers.Attach(ctx, id, tty, streams(in, out, errOut, resize))
	if err != nil {
		klog.InfoS("Attach stream failed", "containerID", id, "err", err)
	}
	return err
}

// streams converts the streaming server's streams. Interface conversion
// keeps streams that were not requested nil.
func streams(in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) oci.Streams {
	s := oci.Streams{Stdin: in}
	if out != nil {
		s.Stdout = out
	}
	if errOut != nil {
		s.Stderr = errOut
	}
	if resize != nil {
		sizes := make(chan oci.TermSize)
		go func() {
			// Ends when the client's resize stream does, with the connection.
			defer close(sizes)
			for ts := range resize {
				sizes <- oci.TermSize{Width: ts.Width, Height: ts.Height}
			}
		}()
		s.Resize = sizes
	}
	return s
}
