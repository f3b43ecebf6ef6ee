package shim

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"
	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/oci/runtime"
	"github.com/nodeagent/nodeagent/oci/shim/internal/proto"
)

// ttyDrain is how long a terminal's output is still read after the exec'd
// process exited: children it left in the background may hold the terminal
// open forever.
const ttyDrain = time.Second

// eot is the terminal's end-of-file character (^D): what a terminal user
// types to close the input, sent when the client closes stdin.
const eot = 0x04

// execStream runs an interactive process in a running container. Without a
// terminal the process gets the client's pipes as its stdio; with one, the
// shim copies between the pipes and the pty master. The process is killed
// if the client goes before it exits.
func (s *shim) execStream(conn *net.UnixConn, req proto.StreamRequest, f streamFiles) error {
	var process specs.Process
	if err := json.Unmarshal(req.Process, &process); err != nil {
		f.close()
		return fmt.Errorf("exec process spec: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	process.Terminal = req.Tty
	c, err := s.lookup(req.ID)
	if err == nil && c.state().Status != StatusRunning {
		err = fmt.Errorf("container %s is %s: %w", req.ID, c.state().Status, errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		f.close()
		return err
	}
	if req.Tty {
		return s.execTTY(conn, req.ID, process, f)
	}
	gen := s.reaper.Generation()
	pid, err := s.startExec(req.ID, process, runtime.ExecOpts{Stdin: f.stdin, Stdout: f.stdout, Stderr: f.stderr})
	// The process holds its own copies; EOF must reach the client when it
	// (and its children) exit, not when the shim lets go.
	f.close()
	if err != nil {
		return err
	}
	s.superviseExec(conn, pid, s.reaper.Subscribe(pid, gen), nil, nil)
	return nil
}

func (s *shim) startExec(id string, process specs.Process, o runtime.ExecOpts) (int, error) {
	ctx, cancel := opContext()
	defer cancel()
	o.PidFile = filepath.Join(s.stateDir, fmt.Sprintf("e%d.pid", s.execs.Add(1)))
	defer os.Remove(o.PidFile)
	return s.rt.Exec(ctx, id, process, o)
}

// execTTY starts the process on a new terminal and copies between it and the
// client's pipes.
func (s *shim) execTTY(conn *net.UnixConn, id string, process specs.Process, f streamFiles) error {
	con, err := newConsole(s.consolePath())
	if err != nil {
		f.close()
		return err
	}
	gen := s.reaper.Generation()
	pid, err := s.startExec(id, process, runtime.ExecOpts{ConsoleSocket: con.socketPath})
	if err == nil {
		err = con.receiveMaster()
	}
	if err != nil {
		con.close()
		f.close()
		return err
	}
	exit := s.reaper.Subscribe(pid, gen)
	master := con.master
	stdin, stdout := pollable(f.stdin), pollable(f.stdout)
	if f.stderr != nil {
		f.stderr.Close() // a terminal merges stderr into stdout
	}
	var out io.Writer = io.Discard
	if stdout != nil {
		out = stdout
	}
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		// Ends when the terminal hangs up (EIO once no process holds it)
		// or is closed.
		io.Copy(out, master)
	}()
	if stdin != nil {
		go func() {
			if _, err := io.Copy(master, stdin); err == nil {
				master.Write([]byte{eot})
			}
		}()
	}
	resize := func(ws proto.WinSize) { setWinsize(master, ws) }
	s.superviseExec(conn, pid, exit, resize, func() {
		// Output the process wrote before it exited is in the terminal
		// already; read it before closing.
		select {
		case <-outDone:
		case <-time.After(ttyDrain):
		}
		con.close()
		<-outDone
		if stdin != nil {
			stdin.Close()
		}
		if stdout != nil {
			stdout.Close()
		}
	})
	return nil
}

// superviseExec answers the request, then waits for the process to exit or
// the client to go, in which case it kills the process. Either way it
// returns once the process is reaped, after finish (if any) ran, having told
// the client the exit code if the client is still there.
func (s *shim) superviseExec(conn *net.UnixConn, pid int, exit chan runc.Exit, resize func(proto.WinSize), finish func()) {
	sendStream(conn, proto.StreamMessage{})
	gone := readStream(conn, resize)
	var e runc.Exit
	select {
	case e = <-exit:
	case <-gone:
		if pidfd, err := s.reaper.Pidfd(pid); err == nil {
			unix.PidfdSendSignal(int(pidfd.Fd()), unix.SIGKILL, nil, 0)
			pidfd.Close()
		}
		e = <-exit
	}
	if finish != nil {
		finish()
	}
	sendStream(conn, proto.StreamMessage{Exited: true, ExitCode: int32(e.Status)})
}
