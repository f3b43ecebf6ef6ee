package shim

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/oci/shim/internal/proto"
)

// streamSocketName is the shim's stream socket, beside shim.sock and
// shorter, so that it fits wherever shim.sock does. Streams need their own
// socket: net/rpc cannot carry descriptors or long-lived byte streams.
const streamSocketName = "io.sock"

// maxStreamPacket bounds one stream packet; a request carries a process
// spec, a few KiB in practice.
const maxStreamPacket = 1 << 20

// listenStreams binds the stream socket. SOCK_SEQPACKET keeps each message
// and the descriptors sent with it together.
func listenStreams(path string) (*net.UnixListener, error) {
	os.Remove(path)
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("shim stream socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("shim stream socket: %w", err)
	}
	return l, nil
}

// acceptStreams serves stream connections until l is closed.
func (s *shim) acceptStreams(l *net.UnixListener) {
	for {
		conn, err := l.AcceptUnix()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			slog.Warn("accept stream", "err", err)
			continue
		}
		go s.serveStream(conn)
	}
}

// streamFiles are the client's pipes as the shim received them.
type streamFiles struct {
	stdin, stdout, stderr *os.File
}

func (f streamFiles) close() {
	for _, file := range []*os.File{f.stdin, f.stdout, f.stderr} {
		if file != nil {
			file.Close()
		}
	}
}

// serveStream runs one exec or attach until it ends or the client goes.
func (s *shim) serveStream(conn *net.UnixConn) {
	defer conn.Close()
	req, files, err := readStreamRequest(conn)
	if err == nil {
		switch req.Kind {
		case proto.StreamExec:
			err = s.execStream(conn, req, files)
		case proto.StreamAttach:
			err = s.attachStream(conn, req, files)
		default:
			files.close()
			err = fmt.Errorf("stream kind %q: %w", req.Kind, errdefs.ErrInvalidArgument)
		}
	}
	if err != nil {
		// Answers a request that failed before it started; later failures
		// find the connection closed, which is fine.
		sendStream(conn, proto.StreamMessage{Error: proto.EncodeError(err).Error()})
	}
}

// readStreamRequest reads the request and the descriptors it announces.
func readStreamRequest(conn *net.UnixConn) (proto.StreamRequest, streamFiles, error) {
	var req proto.StreamRequest
	buf := make([]byte, maxStreamPacket)
	oob := make([]byte, unix.CmsgSpace(3*4))
	n, oobn, flags, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return req, streamFiles{}, fmt.Errorf("read stream request: %w", err)
	}
	fds, err := parseRights(oob[:oobn])
	files := streamFiles{}
	next := func(want bool) *os.File {
		if !want || len(fds) == 0 {
			return nil
		}
		f := os.NewFile(uintptr(fds[0]), "stream")
		fds = fds[1:]
		return f
	}
	jsonErr := json.Unmarshal(buf[:n], &req)
	files.stdin, files.stdout, files.stderr = next(req.Stdin), next(req.Stdout), next(req.Stderr)
	for _, fd := range fds {
		unix.Close(fd) // more than announced
	}
	switch {
	case err != nil:
	case flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0:
		err = fmt.Errorf("stream request truncated: %w", errdefs.ErrInvalidArgument)
	case jsonErr != nil:
		err = fmt.Errorf("stream request: %v: %w", jsonErr, errdefs.ErrInvalidArgument)
	case (req.Stdin && files.stdin == nil) || (req.Stdout && files.stdout == nil) || (req.Stderr && files.stderr == nil):
		err = fmt.Errorf("stream request: descriptors missing: %w", errdefs.ErrInvalidArgument)
	}
	if err != nil {
		files.close()
		return req, streamFiles{}, err
	}
	return req, files, nil
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("stream request: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var fds []int
	for i := range msgs {
		rights, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, rights...)
		}
	}
	return fds, nil
}

// pollable makes f non-blocking, so that the shim's own reads and writes of
// it go through the poller and end when it is closed.
func pollable(f *os.File) *os.File {
	if f == nil {
		return nil
	}
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	f.Close()
	if err != nil {
		return nil
	}
	unix.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), "stream")
}

func sendStream(conn *net.UnixConn, m proto.StreamMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	_, err = conn.Write(b)
	return err
}

// readStream reads the client's messages, passing resizes to resize, until
// the client goes; gone is closed then.
func readStream(conn *net.UnixConn, resize func(proto.WinSize)) (gone chan struct{}) {
	gone = make(chan struct{})
	go func() {
		defer close(gone)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil || n == 0 {
				return
			}
			var m proto.StreamMessage
			if json.Unmarshal(buf[:n], &m) == nil && m.Resize != nil && resize != nil {
				resize(*m.Resize)
			}
		}
	}()
	return gone
}

// setWinsize resizes the terminal behind a pty master without putting the
// file back into blocking mode, as Fd would.
func setWinsize(master *os.File, ws proto.WinSize) {
	raw, err := master.SyscallConn()
	if err != nil {
		return
	}
	raw.Control(func(fd uintptr) {
		unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Height, Col: ws.Width})
	})
}
