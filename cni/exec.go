package cni

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"

	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// DefaultTimeout bounds one CNI ADD or DEL when no timeout is configured.
const DefaultTimeout = time.Minute

// waitDelay is how long a killed plugin's output pipes may stay open (held
// by a child it left behind) before the run is abandoned anyway.
const waitDelay = 2 * time.Second

// pluginExec runs plugins as libcni's default does, but in a process group
// of their own that is killed as a whole when the context ends: a plugin
// that hangs, or a child it started (iptables waiting for its lock, a
// script's sleep), can never hold ADD or DEL past the timeout.
type pluginExec struct {
	version.PluginDecoder
}

var _ invoke.Exec = &pluginExec{}

func (*pluginExec) FindInPath(plugin string, paths []string) (string, error) {
	return invoke.FindInPath(plugin, paths)
}

func (*pluginExec) ExecPlugin(ctx context.Context, path string, stdin []byte, environ []string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		var stdout, stderr bytes.Buffer
		c := exec.CommandContext(ctx, path)
		c.Env = environ
		c.Stdin = bytes.NewReader(stdin)
		c.Stdout, c.Stderr = &stdout, &stderr
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
		c.WaitDelay = waitDelay
		err := c.Run()
		if err == nil {
			return stdout.Bytes(), nil
		}
		// The plugin binary being replaced (an upgrade): try again, as
		// libcni does.
		if errors.Is(err, syscall.ETXTBSY) && attempt < 5 && ctx.Err() == nil {
			time.Sleep(time.Second)
			continue
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("plugin %s killed: %w", path, context.Cause(ctx))
		}
		return nil, pluginErr(err, stdout.Bytes(), stderr.Bytes())
	}
}

// pluginErr is the plugin's own error when it printed one (the CNI spec's
// error object on stdout), else what it wrote to stderr.
func pluginErr(err error, stdout, stderr []byte) error {
	e := &types.Error{}
	switch {
	case len(stdout) > 0:
		if perr := json.Unmarshal(stdout, e); perr != nil {
			e.Msg = fmt.Sprintf("netplugin failed but error parsing its diagnostic message %q: %v", stdout, perr)
		}
	case len(stderr) > 0:
		e.Msg = fmt.Sprintf("netplugin failed: %q", stderr)
	default:
		e.Msg = fmt.Sprintf("netplugin failed with no error message: %v", err)
	}
	return e
}
