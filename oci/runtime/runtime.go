package runtime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"

	"github.com/containerd/errdefs"
	runc "github.com/containerd/go-runc"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Runtime is one OCI runtime binary with its state directory.
type Runtime struct {
	path string
	root string
	rc   *runc.Runc
}

// New returns a driver for the runtime binary at path keeping its state in
// root (`<state>/runtime/<handler>`).
func New(path, root string) *Runtime {
	return &Runtime{
		path: path,
		root: root,
		// JSON logs let errors be reduced to the runtime's message.
		rc: &runc.Runc{Command: path, Root: root, LogFormat: runc.JSON},
	}
}

// Path is the runtime binary.
func (r *Runtime) Path() string { return r.path }

// Root is the runtime's state directory.
func (r *Runtime) Root() string { return r.root }

// Start starts the user process of a created container.
func (r *Runtime) Start(ctx context.Context, id string) error {
	return r.wrap(ctx, "start", id, r.rc.Start(ctx, id))
}

// Kill signals the container's init, or with all every process in it.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	return r.wrap(ctx, "kill", id, r.rc.Kill(ctx, id, int(sig), &runc.KillOpts{All: all}))
}

// Delete removes the container, killing it first if it still runs. A
// container that does not exist is already deleted: success.
//
// A plain delete is tried first: on a stopped container it takes ~15 ms,
// where --force always pays runc's ~100 ms kill-and-wait even when there is
// nothing left to kill. --force is the fallback for one still running.
func (r *Runtime) Delete(ctx context.Context, id string) error {
	err := r.wrap(ctx, "delete", id, r.rc.Delete(ctx, id, &runc.DeleteOpts{}))
	if err != nil && !errdefs.IsNotFound(err) {
		err = r.wrap(ctx, "delete", id, r.rc.Delete(ctx, id, &runc.DeleteOpts{Force: true}))
	}
	if errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// State returns what the runtime knows about the container: pid, status
// (created, running, stopped, paused), bundle.
func (r *Runtime) State(ctx context.Context, id string) (*runc.Container, error) {
	c, err := r.rc.State(ctx, id)
	if err != nil {
		return nil, r.wrap(ctx, "state", id, err)
	}
	return c, nil
}

// Exists reports whether the runtime has state for the container, without
// running the binary: its state directory is `<root>/<id>` for both runc and
// crun.
func (r *Runtime) Exists(id string) (bool, error) {
	_, err := os.Stat(filepath.Join(r.root, id))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (r *Runtime) wrap(ctx context.Context, op, id string, err error) error {
	if err == nil {
		return nil
	}
	return classify(ctx, op, id, err, goRuncMessage(err))
}

// Update applies new cgroup limits to a running or created container.
func (r *Runtime) Update(ctx context.Context, id string, res *specs.LinuxResources) error {
	return r.wrap(ctx, "update", id, r.rc.Update(ctx, id, res))
}
