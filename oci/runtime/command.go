package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	runc "github.com/containerd/go-runc"
	"golang.org/x/sys/unix"
)

// logFD is where commands built by command find the write end of their log
// pipe; `--log /proc/self/fd/3` makes the runtime log there instead of to its
// stderr, which create and exec hand to the container.
const logFD = 3

// maxLog bounds what is kept of one command's log.
const maxLog = 64 << 10

// invocation is one runtime command whose log goes to a pipe instead of a
// file, sparing a file creation per call. The runtime does not pass fds above
// 2 into the container (no --preserve-fds), and its init marks them
// close-on-exec before running the user process.
type invocation struct {
	cmd  *exec.Cmd
	logR *os.File
	logW *os.File
}

func (r *Runtime) command(ctx context.Context, args ...string) (*invocation, error) {
	logR, logW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("log pipe: %w", err)
	}
	global := []string{"--root", r.root, "--log", fmt.Sprintf("/proc/self/fd/%d", logFD), "--log-format", "json"}
	cmd := exec.CommandContext(ctx, r.path, append(global, args...)...)
	cmd.ExtraFiles = []*os.File{logW}
	// NOTIFY_SOCKET makes runc talk to systemd on the container's behalf.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	return &invocation{cmd: cmd, logR: logR, logW: logW}, nil
}

// start starts the command through go-runc's Monitor and closes the parent's
// copy of the log pipe's write end.
func (inv *invocation) start() (chan runc.Exit, error) {
	ec, err := runc.Monitor.Start(inv.cmd)
	inv.logW.Close()
	if err != nil {
		inv.close()
		return nil, err
	}
	return ec, nil
}

// wait waits for the command and returns its exit status and its log. The log
// is read without waiting for EOF: a created container's init keeps the
// pipe's write end until it starts the user process.
func (inv *invocation) wait(ec chan runc.Exit) (int, []byte) {
	status, err := runc.Monitor.Wait(inv.cmd, ec)
	if err != nil && status == 0 {
		status = 255
	}
	return status, drain(inv.logR)
}

func (inv *invocation) close() {
	inv.logR.Close()
}

// drain reads what the pipe holds now, up to maxLog, without blocking.
func drain(f *os.File) []byte {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil
	}
	var out []byte
	buf := make([]byte, 4096)
	for len(out) < maxLog {
		var n int
		var rerr error
		// One non-blocking read attempt per call: os.Pipe's read end is
		// non-blocking and returning true stops the poller from waiting.
		if err := rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			return true
		}); err != nil || rerr != nil || n <= 0 {
			break
		}
		out = append(out, buf[:n]...)
	}
	return out
}

// runtimeError is the error of a command that exited with status: its error
// messages, else all it logged, else the status.
func runtimeError(status int, log []byte) error {
	msg := logMessages(log, true)
	if msg == "" {
		msg = logMessages(log, false)
	}
	if msg == "" {
		msg = fmt.Sprintf("exit status %d", status)
	}
	return fmt.Errorf("%s", msg)
}
