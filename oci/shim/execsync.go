package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/oci/runtime"
)

// maxExecOutput caps each of ExecSync's stdout and stderr, as CRI-O and
// containerd do; the rest is read and dropped so the process never blocks.
const maxExecOutput = 16 << 20

// execDrain is how long output is still read after the exec'd process exited:
// what it wrote is already in the pipes, but children it left in the
// background may hold them open forever.
const execDrain = 100 * time.Millisecond

// execSync runs process in the container and returns its output and exit
// code. On timeout the process is killed and the error wraps
// context.DeadlineExceeded.
func (s *shim) execSync(ctx context.Context, id string, rawProcess []byte, timeout time.Duration) (stdout, stderr []byte, code int32, err error) {
	var process specs.Process
	if err := json.Unmarshal(rawProcess, &process); err != nil {
		return nil, nil, 0, fmt.Errorf("exec process spec: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	c, err := s.lookup(id)
	if err != nil {
		return nil, nil, 0, err
	}
	if st := c.state().Status; st != StatusRunning {
		return nil, nil, 0, fmt.Errorf("container %s is %s: %w", id, st, errdefs.ErrFailedPrecondition)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, nil, 0, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, nil, 0, err
	}
	out, errOut := collect(outR), collect(errR)
	defer out.stop()
	defer errOut.stop()
	gen := s.reaper.Generation()
	pidFile := filepath.Join(s.stateDir, fmt.Sprintf("e%d.pid", s.execs.Add(1)))
	pid, err := s.rt.Exec(ctx, id, process, runtime.ExecOpts{PidFile: pidFile, Stdout: outW, Stderr: errW})
	os.Remove(pidFile)
	outW.Close()
	errW.Close()
	if err != nil {
		return nil, nil, 0, err
	}
	exit := s.reaper.Subscribe(pid, gen)
	status, timedOut := s.waitExec(pid, exit, timeout)
	out.stop()
	errOut.stop()
	if timedOut {
		err = fmt.Errorf("exec in %s timed out after %s: %w", id, timeout, context.DeadlineExceeded)
	}
	return out.bytes(), errOut.bytes(), int32(status), err
}

// waitExec waits for the exec'd process, the shim's child once the runtime
// exited, and kills it once timeout (if any) has passed. It returns once the
// process is reaped.
func (s *shim) waitExec(pid int, exit chan runc.Exit, timeout time.Duration) (int, bool) {
	if timeout <= 0 {
		return (<-exit).Status, false
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case e := <-exit:
		return e.Status, false
	case <-t.C:
	}
	// Signalled by pidfd: the pid may have been reaped (and reused) by now.
	if pidfd, err := s.reaper.Pidfd(pid); err == nil {
		unix.PidfdSendSignal(int(pidfd.Fd()), unix.SIGKILL, nil, 0)
		pidfd.Close()
	}
	return (<-exit).Status, true
}

// collector reads a pipe into a capped buffer.
type collector struct {
	f    *os.File
	mu   sync.Mutex
	buf  []byte
	done chan struct{}
	once sync.Once
}

func collect(f *os.File) *collector {
	c := &collector{f: f, done: make(chan struct{})}
	go c.run()
	return c
}

func (c *collector) run() {
	defer close(c.done)
	chunk := make([]byte, 32<<10)
	for {
		n, err := c.f.Read(chunk)
		c.mu.Lock()
		if room := maxExecOutput - len(c.buf); room > 0 {
			c.buf = append(c.buf, chunk[:min(n, room)]...)
		}
		c.mu.Unlock()
		if err != nil {
			return // EOF, or stop's deadline
		}
	}
}

// stop reads what is left for at most execDrain, then closes the pipe.
func (c *collector) stop() {
	c.once.Do(func() {
		c.f.SetReadDeadline(time.Now().Add(execDrain))
		<-c.done
		c.f.Close()
	})
}

func (c *collector) bytes() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf
}
