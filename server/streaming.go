package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/wsstream"

	"github.com/nodeagent/nodeagent/oci"
)

// StreamingOptions configure the exec/attach/port-forward HTTP server.
type StreamingOptions struct {
	// Address and Port to listen on; port 0 picks a free one.
	Address string
	Port    int
	// IdleTimeout closes a stream that carried nothing this long; 0 means
	// kubelet's 4h.
	IdleTimeout time.Duration
	// URLTTL is how long a URL stays valid unused; 0 means DefaultURLTTL.
	URLTTL time.Duration
	// TLSCertFile and TLSKeyFile, both set, make the server HTTPS.
	TLSCertFile, TLSKeyFile string
}

const defaultIdleTimeout = 4 * time.Hour

// streamServer serves the single-use URLs that Exec, Attach and
// PortForward hand out. The protocols are k8s.io/cri-streaming's (SPDY,
// and WebSocket up to v4), plus what kubectl and crictl speak since
// Kubernetes 1.30 and the library does not: remotecommand v5 over
// WebSocket (streaming_websocket.go) and SPDY tunnelled through a
// WebSocket for port-forward (streaming_tunnel.go).
type streamServer struct {
	urls *urlCache
	idle time.Duration
	rt   streamRuntime
}

// StartStreaming listens and serves the streaming server. It listens before
// it returns, so the URLs name the real port from the first RPC on. stop
// closes the listener; streams in progress end with their clients.
func (s *Server) StartStreaming(o StreamingOptions) (stop func() error, err error) {
	var cert tls.Certificate
	if o.TLSCertFile != "" || o.TLSKeyFile != "" {
		if cert, err = tls.LoadX509KeyPair(o.TLSCertFile, o.TLSKeyFile); err != nil {
			return nil, fmt.Errorf("streaming server: %w", err)
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(o.Address, strconv.Itoa(o.Port)))
	if err != nil {
		return nil, fmt.Errorf("streaming server: %w", err)
	}
	base := url.URL{Scheme: "http", Host: l.Addr().String()}
	if cert.Certificate != nil {
		// HTTP/1.1 only: SPDY and WebSocket take over the connection after
		// an HTTP/1.1 upgrade, which HTTP/2 has not.
		l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}})
		base.Scheme = "https"
	}
	st := &streamServer{urls: newURLCache(base, o.URLTTL), idle: o.IdleTimeout, rt: streamRuntime{s}}
	if st.idle <= 0 {
		st.idle = defaultIdleTimeout
	}
	s.stream = st
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/{token}", st.serveExec)
	mux.HandleFunc("/attach/{token}", st.serveAttach)
	mux.HandleFunc("/portforward/{token}", st.servePortForward)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	go func() {
		if err := hs.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Streaming server stopped")
		}
	}()
	klog.InfoS("Serving streams", "url", base.String())
	return hs.Close, nil
}

// streamer returns the streaming server, which the daemon starts before it
// serves CRI.
func (s *Server) streamer() (*streamServer, error) {
	if s.stream == nil {
		return nil, fmt.Errorf("streaming server not started: %w", errdefs.ErrUnavailable)
	}
	return s.stream, nil
}

// creationTimeout bounds the wait for a SPDY client's streams.
const creationTimeout = remotecommand.DefaultStreamCreationTimeout

func (st *streamServer) serveExec(w http.ResponseWriter, r *http.Request) {
	req, ok := consume[*runtimeapi.ExecRequest](st.urls, r.PathValue("token"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	st.serveCommand(w, r, "Exec", req, func(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) error {
		return st.rt.ExecInContainer(ctx, "", "", req.ContainerId, req.Cmd, in, out, errOut, req.Tty, resize, 0)
	}, func(w http.ResponseWriter, r *http.Request, opts *remotecommand.Options) {
		remotecommand.ServeExec(w, r, st.rt, "", "", req.ContainerId, req.Cmd, opts, st.idle, creationTimeout, remotecommand.SupportedStreamingProtocols)
	})
}

func (st *streamServer) serveAttach(w http.ResponseWriter, r *http.Request) {
	req, ok := consume[*runtimeapi.AttachRequest](st.urls, r.PathValue("token"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	st.serveCommand(w, r, "Attach", req, func(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) error {
		return st.rt.AttachContainer(ctx, "", "", req.ContainerId, in, out, errOut, req.Tty, resize)
	}, func(w http.ResponseWriter, r *http.Request, opts *remotecommand.Options) {
		remotecommand.ServeAttach(w, r, st.rt, "", "", req.ContainerId, opts, st.idle, creationTimeout, remotecommand.SupportedStreamingProtocols)
	})
}

// commandRequest is what exec and attach requests share.
type commandRequest interface {
	GetContainerId() string
	GetStdin() bool
	GetStdout() bool
	GetStderr() bool
	GetTty() bool
}

// serveCommand serves an exec or attach stream: a WebSocket v5 client
// through run, a SPDY one through the upstream server spdy calls.
func (st *streamServer) serveCommand(w http.ResponseWriter, r *http.Request, kind string, req commandRequest,
	run runStreams, spdy func(http.ResponseWriter, *http.Request, *remotecommand.Options)) {
	klog.V(4).InfoS(kind+" stream connected", "containerID", req.GetContainerId(), "protocols", offered(r))
	w, r, done := endOnClose(w, r)
	defer done()
	opts := &remotecommand.Options{Stdin: req.GetStdin(), Stdout: req.GetStdout(), Stderr: req.GetStderr(), TTY: req.GetTty()}
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		serveV5(w, r, opts, st.idle, run)
		return
	}
	spdy(w, r, opts)
}

func (st *streamServer) servePortForward(w http.ResponseWriter, r *http.Request) {
	req, ok := consume[*runtimeapi.PortForwardRequest](st.urls, r.PathValue("token"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	klog.V(4).InfoS("PortForward stream connected", "podSandboxID", req.PodSandboxId, "protocols", offered(r))
	w, r, done := endOnClose(w, r)
	defer done()
	if wsstream.IsWebSocketRequestWithTunnelingProtocol(r) {
		st.serveTunnel(w, r, req.PodSandboxId)
		return
	}
	// The ports are those of the request for the legacy WebSocket
	// protocol; SPDY clients name a port per stream.
	opts, err := portforward.BuildV4Options(req.Port)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	portforward.ServePortForward(w, r, st.rt, req.PodSandboxId, "", opts, st.idle, creationTimeout, portforward.SupportedProtocols)
}

// offered names the transport and protocols a client asks for.
func offered(r *http.Request) string {
	if wsstream.IsWebSocketRequest(r) {
		return "websocket: " + r.Header.Get(wsstream.WebSocketProtocolHeader)
	}
	return "spdy: " + strings.Join(r.Header.Values(httpstream.HeaderProtocolVersion), ", ")
}

// endOnClose returns w and r such that r's context ends when the
// connection hijacked from w is closed. net/http does not end the context
// of a hijacked request, and the exec or attach behind a stream whose
// client left, or that idled out, must end with its connection.
func endOnClose(w http.ResponseWriter, r *http.Request) (http.ResponseWriter, *http.Request, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	return hijackWatch{w, cancel}, r.WithContext(ctx), cancel
}

type hijackWatch struct {
	http.ResponseWriter
	cancel context.CancelFunc
}

func (h hijackWatch) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	return &cancelConn{Conn: c, cancel: h.cancel}, rw, nil
}

type cancelConn struct {
	net.Conn
	cancel context.CancelFunc
	once   sync.Once
}

func (c *cancelConn) Close() error {
	c.once.Do(c.cancel)
	return c.Conn.Close()
}

// streamRuntime is what the streaming protocols call once a client
// connected to a URL: cri-streaming's Executor, Attacher and PortForwarder.
// The pod name and uid those pass are unused: URLs carry the ids.
type streamRuntime struct{ s *Server }

func (r streamRuntime) ExecInContainer(ctx context.Context, _, _, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	err := r.s.containers.Exec(ctx, id, cmd, tty, streams(in, out, errOut, resize))
	var exit *oci.ExitError
	if err != nil && !errors.As(err, &exit) {
		klog.InfoS("Exec stream failed", "containerID", id, "err", err)
	}
	return err
}

func (r streamRuntime) AttachContainer(ctx context.Context, _, _, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
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
