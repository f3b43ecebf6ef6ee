package shim

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"

	"github.com/containerd/errdefs"

	"github.com/nodeagent/nodeagent/oci/shim/internal/proto"
)

// attachQueue bounds the chunks queued for one attached client. A client
// that falls this far behind is detached rather than allowed to stall the
// container's output (and its log).
const attachQueue = 256

// fanout copies one output stream of a container to the attached clients.
type fanout struct {
	mu     sync.Mutex
	subs   map[*subscriber]struct{}
	closed bool
}

type subscriber struct {
	ch   chan []byte
	done chan struct{} // closed once the client's pipe is flushed and closed
}

func newFanout() *fanout { return &fanout{subs: map[*subscriber]struct{}{}} }

// add attaches w; it fails once the stream has ended.
func (f *fanout) add(w *os.File) (*subscriber, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, fmt.Errorf("the container's output has ended: %w", errdefs.ErrFailedPrecondition)
	}
	s := &subscriber{ch: make(chan []byte, attachQueue), done: make(chan struct{})}
	f.subs[s] = struct{}{}
	go f.run(s, w)
	return s, nil
}

func (f *fanout) run(s *subscriber, w *os.File) {
	defer close(s.done)
	defer w.Close()
	for b := range s.ch {
		if _, err := w.Write(b); err != nil {
			f.remove(s) // the client went
			for range s.ch {
			}
			return
		}
	}
}

// remove detaches s; its pipe is closed once what is queued is written.
func (f *fanout) remove(s *subscriber) {
	if s == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.subs[s]; ok {
		delete(f.subs, s)
		close(s.ch)
	}
}

// write hands a copy of p to every client, detaching those whose queue is
// full.
func (f *fanout) write(p []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		select {
		case s.ch <- append([]byte(nil), p...):
		default:
			delete(f.subs, s)
			close(s.ch)
		}
	}
}

// close ends the stream for every client.
func (f *fanout) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	for s := range f.subs {
		delete(f.subs, s)
		close(s.ch)
	}
}

// teeReader hands what the log copier reads to the attached clients as it is
// read, before it is split into log lines: a prompt has no newline.
type teeReader struct {
	r   io.Reader
	out *fanout
}

func (t teeReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		t.out.write(p[:n])
	}
	return n, err
}

// attachStream attaches the client to the container's init: its output from
// now on, its stdin if it was created with one. It returns when the
// container exits, the client goes, or the client's stdin ends (see
// forwardStdin).
func (s *shim) attachStream(conn *net.UnixConn, req proto.StreamRequest, f streamFiles) error {
	c, err := s.lookup(req.ID)
	if err == nil {
		err = c.canAttach(req.Tty)
	}
	if err != nil {
		f.close()
		return err
	}
	outSub, errSub, err := c.subscribe(pollable(f.stdout), pollable(f.stderr))
	if err != nil {
		f.close()
		return err
	}
	detach := func() { c.io.out.remove(outSub); c.io.errOut.remove(errSub) }
	sendStream(conn, proto.StreamMessage{})
	var resize func(proto.WinSize)
	if c.io.master != nil {
		resize = func(ws proto.WinSize) { setWinsize(c.io.master, ws) }
	}
	gone := readStream(conn, resize)
	stdinDetach := make(chan struct{})
	if stdin := pollable(f.stdin); stdin != nil {
		defer stdin.Close()
		go func() {
			if c.forwardStdin(stdin) {
				close(stdinDetach)
			}
		}()
	}
	select {
	case <-c.exited:
	case <-gone:
	case <-stdinDetach:
	}
	detach()
	for _, sub := range []*subscriber{outSub, errSub} {
		if sub != nil {
			<-sub.done
		}
	}
	sendStream(conn, proto.StreamMessage{Exited: true})
	return nil
}

func (c *container) canAttach(tty bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.st.Status != StatusRunning {
		return fmt.Errorf("container %s is %s: %w", c.st.ID, c.st.Status, errdefs.ErrFailedPrecondition)
	}
	if tty != c.tty {
		return fmt.Errorf("tty: container %s was created with tty=%v: %w", c.st.ID, c.tty, errdefs.ErrInvalidArgument)
	}
	return nil
}

// subscribe attaches the client's output pipes (either may be nil). A
// terminal has one output stream; a stderr pipe is then closed at once.
func (c *container) subscribe(stdout, stderr *os.File) (outSub, errSub *subscriber, err error) {
	if stdout != nil {
		if outSub, err = c.io.out.add(stdout); err != nil {
			stdout.Close()
			if stderr != nil {
				stderr.Close()
			}
			return nil, nil, err
		}
	}
	if stderr != nil {
		if c.io.errOut == nil {
			stderr.Close()
		} else if errSub, err = c.io.errOut.add(stderr); err != nil {
			stderr.Close()
			c.io.out.remove(outSub)
			return nil, nil, err
		}
	}
	return outSub, errSub, nil
}

// forwardStdin copies the client's stdin into the container's until the
// client closes it. Then, for a container created with stdin_once (and no
// terminal), the container's stdin is closed too and the client stays
// attached to the output until the container exits, as kubelet expects of
// `kubectl attach -i`; otherwise forwardStdin reports that the client
// detaches. A container created without stdin has nothing to write to: the
// input is dropped.
func (c *container) forwardStdin(in *os.File) (detach bool) {
	var target io.Writer = io.Discard
	switch {
	case c.io.master != nil && c.stdin:
		target = c.io.master
	case c.io.stdin != nil:
		target = c.io.stdin
	}
	if _, err := io.Copy(target, in); err != nil {
		return false // the client went, or the container's stdin is closed
	}
	if c.stdinOnce && !c.tty {
		c.io.closeStdin()
		return false
	}
	return true
}
