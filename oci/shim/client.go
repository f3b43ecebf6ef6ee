package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/oci/shim/internal/proto"
)

// Client talks to one shim. Its methods are safe for concurrent use.
type Client struct {
	rpc *rpc.Client
	// streamPath is the shim's stream socket (exec and attach).
	streamPath string
	pidfd      *os.File // the shim process, for Shutdown to see it exit
	events     chan State
	closed     chan struct{}
	once       sync.Once
}

// Connect connects to the shim serving stateDir, as a daemon does after a
// restart. It fails with errdefs.ErrNotFound if no shim lives there.
func Connect(ctx context.Context, stateDir string) (*Client, error) {
	path := filepath.Join(stateDir, socketName)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("no live shim at %s: %w", path, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to shim at %s: %w", path, errdefs.ErrUnavailable)
	}
	pidfd, err := peerPidfd(conn.(*net.UnixConn))
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("shim at %s: %w", path, err)
	}
	c := &Client{rpc: rpc.NewClient(conn), streamPath: filepath.Join(stateDir, streamSocketName), pidfd: pidfd, events: make(chan State, 128), closed: make(chan struct{})}
	// A call answered after the pidfd was opened proves the pidfd is the
	// shim's, not a process that reused its pid.
	if _, err := c.States(ctx); err != nil {
		c.Close()
		return nil, err
	}
	go c.eventLoop()
	return c, nil
}

// peerPidfd opens a pidfd of the process at the other end of conn.
func peerPidfd(conn *net.UnixConn) (*os.File, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	if credErr != nil {
		return nil, fmt.Errorf("peer credentials: %w", credErr)
	}
	fd, err := unix.PidfdOpen(int(cred.Pid), unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("pidfd of shim %d: %w", cred.Pid, err)
	}
	return os.NewFile(uintptr(fd), "shim-pidfd"), nil
}

// call runs one RPC; ctx bounds the wait, not the shim's work.
func (c *Client) call(ctx context.Context, method string, args, reply any) error {
	call := c.rpc.Go(proto.ServiceName+"."+method, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case <-ctx.Done():
		return fmt.Errorf("shim %s: %w", method, ctx.Err())
	}
	var serverErr rpc.ServerError
	switch {
	case call.Error == nil:
		return nil
	case errors.As(call.Error, &serverErr):
		return proto.DecodeError(string(serverErr))
	default:
		return fmt.Errorf("shim %s: %v: %w", method, call.Error, errdefs.ErrUnavailable)
	}
}

// Create creates a container, the shim being the parent of its init and the
// owner of its stdio; its output starts flowing into LogPath.
func (c *Client) Create(ctx context.Context, req CreateRequest) (int, error) {
	var reply proto.CreateReply
	err := c.call(ctx, "Create", req, &reply)
	return reply.Pid, err
}

// Start has the runtime create the container and start it, and returns the
// pid of its init.
func (c *Client) Start(ctx context.Context, id string) (int, error) {
	var reply proto.StartReply
	err := c.call(ctx, "Start", proto.IDRequest{ID: id}, &reply)
	return reply.Pid, err
}

// Kill signals the container's init, or all its processes. Signalling a
// stopped container succeeds.
func (c *Client) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	return c.call(ctx, "Kill", proto.KillRequest{ID: id, Signal: int(sig), All: all}, &proto.Empty{})
}

// Delete deletes a container, killing it if it runs; an unknown id succeeds.
func (c *Client) Delete(ctx context.Context, id string) error {
	return c.call(ctx, "Delete", proto.IDRequest{ID: id}, &proto.Empty{})
}

// State returns one container's state.
func (c *Client) State(ctx context.Context, id string) (State, error) {
	var st State
	err := c.call(ctx, "State", proto.IDRequest{ID: id}, &st)
	return st, err
}

// States returns the state of every container of the shim.
func (c *Client) States(ctx context.Context) ([]State, error) {
	var reply proto.StatesReply
	err := c.call(ctx, "States", proto.Empty{}, &reply)
	return reply.States, err
}

// ExecSync runs process in a running container and returns its output (each
// stream capped at 16 MiB) and exit code. A timeout (0: none) kills the
// process; the error then wraps context.DeadlineExceeded.
func (c *Client) ExecSync(ctx context.Context, id string, process specs.Process, timeout time.Duration) (stdout, stderr []byte, exitCode int32, err error) {
	doc, err := json.Marshal(process)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("exec process spec: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var reply proto.ExecSyncReply
	err = c.call(ctx, "ExecSync", proto.ExecSyncRequest{ID: id, Process: doc, Timeout: timeout}, &reply)
	return reply.Stdout, reply.Stderr, reply.ExitCode, err
}

// ReopenLog reopens the container's log file after kubelet rotated it.
func (c *Client) ReopenLog(ctx context.Context, id string) error {
	return c.call(ctx, "ReopenLog", proto.IDRequest{ID: id}, &proto.Empty{})
}

// Events delivers container states as they change (created, running,
// stopped). A new Client first gets the current state of every container,
// so nothing that happened while no daemon listened is lost. The channel is
// closed when the shim exits or the Client is closed.
func (c *Client) Events() <-chan State { return c.events }

func (c *Client) eventLoop() {
	defer close(c.events)
	var after uint64
	for {
		var reply proto.WaitEventReply
		if err := c.rpc.Call(proto.ServiceName+".WaitEvent", proto.WaitEventRequest{After: after}, &reply); err != nil {
			return
		}
		for _, e := range reply.Events {
			select {
			case c.events <- e.State:
			case <-c.closed:
				return
			}
			after = e.Seq
		}
	}
}

// Shutdown makes the shim exit and waits until it has. It fails with
// errdefs.ErrFailedPrecondition while the shim still has containers. The
// Client is closed on success.
func (c *Client) Shutdown(ctx context.Context) error {
	if err := c.call(ctx, "Shutdown", proto.Empty{}, &proto.Empty{}); err != nil {
		return err
	}
	// The shim exits when this connection closes.
	c.rpc.Close()
	err := waitExit(ctx, c.pidfd)
	c.Close()
	return err
}

// waitExit waits until the process behind pidfd has exited: a pidfd polls
// readable then.
func waitExit(ctx context.Context, pidfd *os.File) error {
	if deadline, ok := ctx.Deadline(); ok {
		pidfd.SetReadDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { pidfd.SetReadDeadline(time.Now()) })
	defer stop()
	raw, err := pidfd.SyscallConn()
	if err != nil {
		return err
	}
	err = raw.Read(func(fd uintptr) bool {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return err != nil || n > 0
	})
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = ctxErr
	}
	if err != nil {
		return fmt.Errorf("waiting for the shim to exit: %w", err)
	}
	return nil
}

// Dead reports whether the shim process has exited, waiting up to d for it.
// A closed Client reports false: its end says nothing about the shim.
func (c *Client) Dead(d time.Duration) bool {
	select {
	case <-c.closed:
		return false
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return waitExit(ctx, c.pidfd) == nil
}

// Close closes the connection; the shim keeps running.
func (c *Client) Close() error {
	c.once.Do(func() {
		close(c.closed)
		c.rpc.Close()
		c.pidfd.Close()
	})
	return nil
}
