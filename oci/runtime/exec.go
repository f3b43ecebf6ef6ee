package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// processFD is where the exec'd process's spec is read from: a pipe instead of
// a temp file, sparing a file creation per exec.
const processFD = logFD + 1

// ExecOpts are the options of Exec.
type ExecOpts struct {
	// PidFile is where the runtime writes the process's pid. Required.
	PidFile string
	// Stdin, Stdout, Stderr become the process's stdio (nil: /dev/null).
	Stdin, Stdout, Stderr *os.File
	// ConsoleSocket, for a terminal process, receives the pty master.
	ConsoleSocket string
}

// Exec starts spec in the container, detached: the runtime exits once the
// process runs, and Exec returns its pid. The process is then reparented to
// the nearest subreaper, which reaps it.
//
// Detached because a runtime that waits copies the process's output through
// pipes of its own until EOF: children the process left in the background
// would hold it (and the caller) forever.
func (r *Runtime) Exec(ctx context.Context, id string, spec specs.Process, o ExecOpts) (int, error) {
	if o.PidFile == "" {
		return 0, fmt.Errorf("runtime exec %s: no pid file: %w", id, errdefs.ErrInvalidArgument)
	}
	doc, err := json.Marshal(spec)
	if err != nil {
		return 0, fmt.Errorf("runtime exec %s: process spec: %v: %w", id, err, errdefs.ErrInvalidArgument)
	}
	args := []string{"exec", "--detach", "--pid-file", o.PidFile, "--process", fmt.Sprintf("/proc/self/fd/%d", processFD)}
	if o.ConsoleSocket != "" {
		args = append(args, "--console-socket", o.ConsoleSocket)
	}
	inv, err := r.command(ctx, append(args, id)...)
	if err != nil {
		return 0, fmt.Errorf("runtime exec %s: %w", id, err)
	}
	defer inv.close()
	specR, specW, err := os.Pipe()
	if err != nil {
		inv.logW.Close()
		return 0, fmt.Errorf("runtime exec %s: %w", id, err)
	}
	inv.cmd.ExtraFiles = append(inv.cmd.ExtraFiles, specR)
	setStdio(inv, o.Stdin, o.Stdout, o.Stderr)
	ec, err := inv.start()
	specR.Close()
	if err != nil {
		specW.Close()
		return 0, fmt.Errorf("runtime exec %s: %w", id, err)
	}
	// A large spec may not fit the pipe's buffer: write it while the runtime reads.
	go func() {
		specW.Write(doc)
		specW.Close()
	}()
	if status, log := inv.wait(ec); status != 0 {
		return 0, classify(ctx, "exec", id, runtimeError(status, log), "")
	}
	return readPid(o.PidFile)
}
