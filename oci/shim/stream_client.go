package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/oci/shim/internal/proto"
)

// outputDrain is how long output is still read after the shim reported the
// end: what the process wrote is in the pipes already, but children it left
// in the background may hold them open forever.
const outputDrain = time.Second

// TermSize is a terminal's size in characters.
type TermSize = proto.WinSize

// Streams are a client's ends of an exec or attach. Nil streams are not
// requested.
type Streams struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Resize carries terminal sizes (terminal only; may be nil).
	Resize <-chan TermSize
}

// Exec runs process in a running container with the given streams and
// returns its exit code once it exited and its output was copied. The
// process is killed if ctx ends or writing its output fails (the client
// went).
func (c *Client) Exec(ctx context.Context, id string, process specs.Process, s Streams) (int32, error) {
	doc, err := json.Marshal(process)
	if err != nil {
		return 0, fmt.Errorf("exec process spec: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return c.stream(ctx, proto.StreamRequest{Kind: proto.StreamExec, ID: id, Process: doc, Tty: process.Terminal}, s)
}

// Attach attaches the streams to a running container's init until it exits,
// ctx ends, writing output fails, or the client's stdin ends and the
// container was not created with stdin_once. tty must match the container.
func (c *Client) Attach(ctx context.Context, id string, tty bool, s Streams) error {
	_, err := c.stream(ctx, proto.StreamRequest{Kind: proto.StreamAttach, ID: id, Tty: tty}, s)
	return err
}

func (c *Client) stream(ctx context.Context, req proto.StreamRequest, s Streams) (int32, error) {
	req.Stdin, req.Stdout, req.Stderr = s.Stdin != nil, s.Stdout != nil, s.Stderr != nil
	p, err := newClientPipes(req)
	if err != nil {
		return 0, err
	}
	defer p.close()
	conn, err := c.openStream(ctx, req, p.remote)
	p.closeRemote()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if m, err := recvStream(conn); err != nil {
		return 0, err
	} else if m.Error != "" {
		return 0, proto.DecodeError(m.Error)
	}
	var outputs sync.WaitGroup
	var clientGone error
	var once sync.Once
	gone := func(err error) {
		once.Do(func() { clientGone = err })
		conn.Close() // tells the shim to kill or detach
	}
	p.copyOut(&outputs, s.Stdout, p.stdoutR, gone)
	p.copyOut(&outputs, s.Stderr, p.stderrR, gone)
	if p.stdinW != nil {
		// Not waited for: it ends when the client's stdin does, which the
		// streaming server closes after we return.
		go func() {
			io.Copy(p.stdinW, s.Stdin)
			p.stdinW.Close()
		}()
	}
	done := make(chan struct{})
	defer close(done)
	if s.Resize != nil {
		go forwardResize(conn, s.Resize, done)
	}
	end, err := recvStream(conn)
	p.drain(&outputs)
	if clientGone != nil {
		return 0, fmt.Errorf("client went: %w", clientGone)
	}
	if err != nil || !end.Exited {
		return 0, fmt.Errorf("shim ended the stream early: %v: %w", err, errdefs.ErrUnavailable)
	}
	return end.ExitCode, nil
}

func (c *Client) openStream(ctx context.Context, req proto.StreamRequest, files []*os.File) (*net.UnixConn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unixpacket", c.streamPath)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("shim at %s does not serve streams (started by an older nodeagent?): %w", c.streamPath, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to shim streams: %v: %w", err, errdefs.ErrUnavailable)
	}
	conn := nc.(*net.UnixConn)
	b, err := json.Marshal(req)
	if err == nil {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		var oob []byte
		if len(fds) > 0 {
			oob = unix.UnixRights(fds...)
		}
		_, _, err = conn.WriteMsgUnix(b, oob, nil)
	}
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("send stream request: %v: %w", err, errdefs.ErrUnavailable)
	}
	return conn, nil
}

func recvStream(conn *net.UnixConn) (proto.StreamMessage, error) {
	var m proto.StreamMessage
	buf := make([]byte, 64<<10)
	n, err := conn.Read(buf)
	if err != nil {
		return m, fmt.Errorf("shim stream: %v: %w", err, errdefs.ErrUnavailable)
	}
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		return m, fmt.Errorf("shim stream: %v: %w", err, errdefs.ErrInternal)
	}
	return m, nil
}

// forwardResize sends terminal sizes to the shim until the stream ends, and
// drains the channel after that until its sender closes it, so that the
// sender never blocks.
func forwardResize(conn *net.UnixConn, resize <-chan TermSize, done <-chan struct{}) {
	for {
		select {
		case ws, ok := <-resize:
			if !ok {
				return
			}
			sendStream(conn, proto.StreamMessage{Resize: &ws})
		case <-done:
			for range resize {
			}
			return
		}
	}
}

// clientPipes are the pipes of one stream: ours, and the ends sent to the
// shim (remote, in request order).
type clientPipes struct {
	stdinW, stdoutR, stderrR *os.File
	remote                   []*os.File
}

func newClientPipes(req proto.StreamRequest) (*clientPipes, error) {
	p := &clientPipes{}
	pipe := func(want bool, ours **os.File, reader bool) error {
		if !want {
			return nil
		}
		r, w, err := os.Pipe()
		if err != nil {
			return fmt.Errorf("stream pipe: %w", err)
		}
		if reader {
			*ours = r
			p.remote = append(p.remote, w)
		} else {
			*ours = w
			p.remote = append(p.remote, r)
		}
		return nil
	}
	err := pipe(req.Stdin, &p.stdinW, false)
	if err == nil {
		err = pipe(req.Stdout, &p.stdoutR, true)
	}
	if err == nil {
		err = pipe(req.Stderr, &p.stderrR, true)
	}
	if err != nil {
		p.closeRemote()
		p.close()
		return nil, err
	}
	return p, nil
}

// copyOut copies one output pipe to the client's writer; a failed write
// means the client went.
func (p *clientPipes) copyOut(wg *sync.WaitGroup, w io.Writer, r *os.File, gone func(error)) {
	if r == nil {
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				if _, werr := w.Write(buf[:n]); werr != nil {
					gone(werr)
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
}

// drain waits for the output copies to reach EOF, at most outputDrain, then
// ends them.
func (p *clientPipes) drain(wg *sync.WaitGroup) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(outputDrain):
		p.close()
		<-done
	}
}

func (p *clientPipes) closeRemote() {
	for _, f := range p.remote {
		f.Close()
	}
	p.remote = nil
}

func (p *clientPipes) close() {
	for _, f := range []*os.File{p.stdinW, p.stdoutR, p.stderrR} {
		if f != nil {
			f.Close()
		}
	}
}
