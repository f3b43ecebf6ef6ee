package shim

import (
	"fmt"
	"os"
	"sync"
	"time"

	runc "github.com/containerd/go-runc"
	"golang.org/x/sys/unix"
)

// stdio is a container's standard streams as the shim holds them: pipes, or
// a pty whose master the runtime sends over a console socket.
type stdio struct {
	// The container's ends, handed to the runtime and closed after create.
	childIn, childOut, childErr *os.File
	// The shim's ends. stdin is kept open for attach (nil without Stdin).
	stdin          *os.File
	stdout, stderr *os.File
	socket         *runc.Socket
	socketPath     string
	// master is the pty master (tty only), non-blocking so that closing it
	// ends a blocked read.
	master *os.File
	// out and errOut fan the output out to attached clients (errOut is nil
	// with a terminal); set by copyTo, closed when the output ends.
	out, errOut *fanout
	stdinClosed sync.Once
	wg          sync.WaitGroup
	done        chan struct{}
}

// newPipes makes the pipes of a non-tty container.
func newPipes(withStdin bool) (_ *stdio, err error) {
	s := &stdio{done: make(chan struct{})}
	defer func() {
		if err != nil {
			s.closeChildEnds()
			s.close()
		}
	}()
	if s.stdout, s.childOut, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	if s.stderr, s.childErr, err = os.Pipe(); err != nil {
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	if withStdin {
		if s.childIn, s.stdin, err = os.Pipe(); err != nil {
			return nil, fmt.Errorf("stdin pipe: %w", err)
		}
	}
	return s, nil
}

// newConsole listens on a console socket for a tty container's pty master.
func newConsole(path string) (*stdio, error) {
	os.Remove(path) // a leftover of a shim that died mid-create
	sock, err := runc.NewConsoleSocket(path)
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return &stdio{socket: sock, socketPath: path, done: make(chan struct{})}, nil
}

// receiveMaster takes the pty master the runtime sent during create.
func (s *stdio) receiveMaster() error {
	con, err := s.socket.ReceiveMaster()
	s.closeSocket()
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	defer con.Close()
	fd, err := unix.FcntlInt(con.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("console: %w", err)
	}
	s.master = os.NewFile(uintptr(fd), "pty-master")
	return nil
}

func (s *stdio) closeSocket() {
	if s.socket != nil {
		s.socket.Close()
		os.Remove(s.socketPath)
		s.socket = nil
	}
}

// copyTo starts copying the output streams into the log.
func (s *stdio) copyTo(l *logFile) {
	start := func(f *os.File, stream string, attached *fanout) {
		if f == nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			copyLog(teeReader{r: f, out: attached}, stream, l)
		}()
	}
	s.out = newFanout()
	if s.master != nil {
		start(s.master, "stdout", s.out)
	} else {
		s.errOut = newFanout()
		start(s.stdout, "stdout", s.out)
		start(s.stderr, "stderr", s.errOut)
	}
	go func() {
		s.wg.Wait()
		s.out.close()
		if s.errOut != nil {
			s.errOut.close()
		}
		close(s.done)
	}()
}

// drain waits for the copies to reach the end of the streams, at most grace:
// processes the init left behind (in a shared PID namespace) may hold them
// open forever. It then closes the shim's ends, which ends the copies.
func (s *stdio) drain(grace time.Duration) {
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-s.done:
	case <-t.C:
	}
	s.closeOutputs()
	<-s.done
}

func (s *stdio) closeChildEnds() {
	for _, f := range []*os.File{s.childIn, s.childOut, s.childErr} {
		if f != nil {
			f.Close()
		}
	}
	s.childIn, s.childOut, s.childErr = nil, nil, nil
}

func (s *stdio) closeOutputs() {
	for _, f := range []*os.File{s.stdout, s.stderr, s.master} {
		if f != nil {
			f.Close()
		}
	}
}

// closeStdin closes the container's stdin once (stdin_once).
func (s *stdio) closeStdin() {
	s.stdinClosed.Do(func() {
		if s.stdin != nil {
			s.stdin.Close()
		}
	})
}

// close releases everything the shim holds.
func (s *stdio) close() {
	s.closeSocket()
	s.closeOutputs()
	s.closeStdin()
}
