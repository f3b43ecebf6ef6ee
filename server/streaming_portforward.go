package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"github.com/containerd/errdefs"

	"github.com/nodeagent/nodeagent/internal/nsutil"
	"github.com/nodeagent/nodeagent/sandbox"
)

// dialTimeout bounds connecting to a port in a pod.
const dialTimeout = 10 * time.Second

// halfCloseGrace is how long the other direction of a forwarded connection
// may still run after one direction ended, as socat does: a peer that never
// closes its side must not pin the stream.
const halfCloseGrace = time.Second

// PortForward copies between stream and a new TCP connection to
// localhost:port inside the pod's network namespace (the host's for a
// host-network pod).
func (r streamRuntime) PortForward(ctx context.Context, sandboxID, _ string, port int32, stream io.ReadWriteCloser) error {
	sb, err := r.s.sandboxes.Get(sandboxID)
	if err != nil {
		return err
	}
	rec := sb.Record()
	if rec.State != sandbox.StateReady {
		return fmt.Errorf("pod sandbox %s is %s: %w", rec.ID, rec.State, errdefs.ErrFailedPrecondition)
	}
	conn, err := dialPod(ctx, rec.NetNS, port)
	if err != nil {
		awaitClient(stream, clientGrace)
		return fmt.Errorf("pod sandbox %s: %w", rec.ID, err)
	}
	defer conn.Close()
	return forward(conn, stream)
}

// clientGrace bounds the wait of awaitClient.
const clientGrace = time.Second

// awaitClient waits until the client has its data stream: it sent its first
// bytes or closed the stream, or grace passed. cri-streaming writes a failed
// forward's error, then resets the streams at once; a client still waiting
// for the reply to its data stream then sees "Stream reset" instead of the
// error (a refused port failed that way under load). What the client sent
// is dropped: the forward failed.
func awaitClient(stream io.Reader, grace time.Duration) {
	read := make(chan struct{})
	go func() {
		var b [1]byte
		_, _ = stream.Read(b[:]) // ends at the latest when the stream is reset
		close(read)
	}()
	select {
	case <-read:
	case <-time.After(grace):
	}
}

// dialPod connects to localhost:port in the network namespace at netnsPath
// ("" = the host's). Literal addresses, IPv4 first: resolving "localhost"
// would run in goroutines outside the namespace.
func dialPod(ctx context.Context, netnsPath string, port int32) (*net.TCPConn, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("port %d: %w", port, errdefs.ErrInvalidArgument)
	}
	var conn net.Conn
	dial := func() error {
		d := net.Dialer{Timeout: dialTimeout}
		var err error
		for _, host := range []string{"127.0.0.1", "::1"} {
			if conn, err = d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(int(port)))); err == nil {
				return nil
			}
		}
		return err
	}
	var err error
	if netnsPath == "" {
		err = dial()
	} else {
		err = nsutil.Do(netnsPath, dial)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to localhost:%d: %w", port, err)
	}
	return conn.(*net.TCPConn), nil
}

// forward copies both ways. When one side ends its output, the other learns
// it (half-close) and has halfCloseGrace to finish.
func forward(conn *net.TCPConn, stream io.ReadWriteCloser) error {
	errc := make(chan error, 2)
	go func() {
		_, err := io.Copy(conn, stream)
		conn.CloseWrite()
		errc <- err
	}()
	go func() {
		_, err := io.Copy(stream, conn)
		// The streaming server closes the stream when we return; closing
		// it here tells the client the pod's side is done.
		stream.Close()
		errc <- err
	}()
	first := <-errc
	select {
	case err := <-errc:
		return errors.Join(first, err)
	case <-time.After(halfCloseGrace):
		// Unblocks the copy still running; the stream is closed by the
		// server once we return.
		conn.Close()
		return first
	}
}
