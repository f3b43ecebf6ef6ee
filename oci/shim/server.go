package shim

import (
	"context"
	"net"
	"net/rpc"
	"syscall"
	"time"

	"github.com/nodeagent/nodeagent/oci/shim/internal/proto"
)

// opTimeout bounds one operation in the shim. The client's context does not
// cross the wire: an operation the daemon gave up on still finishes, so that
// a retry finds its result rather than half a container.
const opTimeout = 2 * time.Minute

// service is the net/rpc face of the shim for one connection; ctx ends with
// the connection, which ends its long polls.
type service struct {
	s        *shim
	ctx      context.Context
	shutdown bool
}

// serveConn serves one client connection until it closes. It reports whether
// that client asked the shim to exit.
func (s *shim) serveConn(conn net.Conn) bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc := &service{s: s, ctx: ctx}
	srv := rpc.NewServer()
	if err := srv.RegisterName(proto.ServiceName, svc); err != nil {
		conn.Close()
		return false
	}
	// net/rpc waits for in-flight calls before ServeConn returns, so the
	// long polls must learn of the closed connection from its reads.
	srv.ServeConn(cancelOnReadError{Conn: conn, cancel: cancel})
	return svc.shutdown
}

// cancelOnReadError cancels the connection's context once reading fails:
// the client closed it or went away.
type cancelOnReadError struct {
	net.Conn
	cancel context.CancelFunc
}

func (c cancelOnReadError) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if err != nil {
		c.cancel()
	}
	return n, err
}

func opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// Create creates a container.
func (v *service) Create(req proto.CreateRequest, reply *proto.CreateReply) error {
	ctx, cancel := opContext()
	defer cancel()
	c, err := v.s.reserve(req.ID)
	if err != nil {
		return proto.EncodeError(err)
	}
	if err := v.s.create(ctx, c, req); err != nil {
		v.s.release(req.ID)
		return proto.EncodeError(err)
	}
	reply.Pid = c.state().Pid
	return nil
}

// Start starts a created container.
func (v *service) Start(req proto.IDRequest, reply *proto.StartReply) error {
	ctx, cancel := opContext()
	defer cancel()
	pid, err := v.s.start(ctx, req.ID)
	reply.Pid = pid
	return proto.EncodeError(err)
}

// Kill signals a container.
func (v *service) Kill(req proto.KillRequest, _ *proto.Empty) error {
	ctx, cancel := opContext()
	defer cancel()
	return proto.EncodeError(v.s.kill(ctx, req.ID, syscall.Signal(req.Signal), req.All))
}

// Delete deletes a container.
func (v *service) Delete(req proto.IDRequest, _ *proto.Empty) error {
	ctx, cancel := opContext()
	defer cancel()
	return proto.EncodeError(v.s.delete(ctx, req.ID))
}

// State returns one container's state.
func (v *service) State(req proto.IDRequest, reply *proto.State) error {
	c, err := v.s.lookup(req.ID)
	if err != nil {
		return proto.EncodeError(err)
	}
	*reply = c.state()
	return nil
}

// States returns the state of every container.
func (v *service) States(_ proto.Empty, reply *proto.StatesReply) error {
	reply.States = v.s.states()
	return nil
}

// ExecSync runs a process in a container and returns its output.
func (v *service) ExecSync(req proto.ExecSyncRequest, reply *proto.ExecSyncReply) error {
	ctx, cancel := opContext()
	defer cancel()
	stdout, stderr, code, err := v.s.execSync(ctx, req.ID, req.Process, req.Timeout)
	reply.Stdout, reply.Stderr, reply.ExitCode = stdout, stderr, code
	return proto.EncodeError(err)
}

// ReopenLog reopens a container's log file.
func (v *service) ReopenLog(req proto.IDRequest, _ *proto.Empty) error {
	return proto.EncodeError(v.s.reopenLog(req.ID))
}

// WaitEvent returns the events after req.After, waiting for one.
func (v *service) WaitEvent(req proto.WaitEventRequest, reply *proto.WaitEventReply) error {
	reply.Events = v.s.events.wait(v.ctx, req.After)
	return nil
}

// Shutdown makes the shim exit once this connection closes, if it has no
// container left.
func (v *service) Shutdown(_ proto.Empty, _ *proto.Empty) error {
	if err := v.s.shutdown(); err != nil {
		return proto.EncodeError(err)
	}
	v.shutdown = true
	return nil
}
