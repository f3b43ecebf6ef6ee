package runtime

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"
)

// CreateOpts are the options of Create.
type CreateOpts struct {
	// PidFile is where the runtime writes the container init's pid. Required.
	PidFile string
	// ConsoleSocket, for a terminal container, is the unix socket the
	// runtime sends the pty master to.
	ConsoleSocket string
	// Stdin, Stdout, Stderr become the container's stdio (nil: /dev/null).
	// Unused with a console. The runtime's own messages also land on Stderr.
	Stdin, Stdout, Stderr *os.File
}

// Create creates the container from the bundle: its init is running the
// runtime's init and waits for Start. It returns the init's pid. With
// go-runc's Monitor replaced by a subreaper's, the caller becomes the init's
// parent once the runtime exits.
func (r *Runtime) Create(ctx context.Context, id, bundle string, o CreateOpts) (int, error) {
	if o.PidFile == "" {
		return 0, fmt.Errorf("runtime create %s: no pid file: %w", id, errdefs.ErrInvalidArgument)
	}
	args := []string{"create", "--bundle", bundle, "--pid-file", o.PidFile}
	if o.ConsoleSocket != "" {
		args = append(args, "--console-socket", o.ConsoleSocket)
	}
	inv, err := r.command(ctx, append(args, id)...)
	if err != nil {
		return 0, fmt.Errorf("runtime create %s: %w", id, err)
	}
	defer inv.close()
	if o.ConsoleSocket == "" {
		setStdio(inv, o.Stdin, o.Stdout, o.Stderr)
	}
	ec, err := inv.start()
	if err != nil {
		return 0, fmt.Errorf("runtime create %s: %w", id, err)
	}
	if status, log := inv.wait(ec); status != 0 {
		return 0, classify(ctx, "create", id, runtimeError(status, log), "")
	}
	return readPid(o.PidFile)
}

func setStdio(inv *invocation, stdin, stdout, stderr *os.File) {
	// A nil *os.File must stay a nil interface, which os/exec maps to /dev/null.
	if stdin != nil {
		inv.cmd.Stdin = stdin
	}
	if stdout != nil {
		inv.cmd.Stdout = stdout
	}
	if stderr != nil {
		inv.cmd.Stderr = stderr
	}
}

func readPid(path string) (int, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("runtime pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("runtime pid file %s: %q: %w", path, raw, errdefs.ErrInternal)
	}
	return pid, nil
}
