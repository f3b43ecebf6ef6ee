package nsutil

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// HelperArg is the argv[1] that makes the nodeagent binary run HelperMain.
const HelperArg = "nshelper"

// IDMap maps a range of IDs in a user namespace to the host.
type IDMap struct{ ContainerID, HostID, Size uint32 }

// UsernsOptions describe a user-namespace pod's namespaces.
type UsernsOptions struct {
	PinOptions
	UIDs, GIDs []IDMap
	// Binary is the nodeagent binary to re-exec as the helper.
	Binary string
	// Sysctls are written inside the new namespaces (key: /proc/sys path).
	Sysctls map[string]string
}

// CreatePinnedUserns creates a user namespace with the given mappings and
// net, ipc and uts namespaces owned by it, and pins all four in Dir. Go
// cannot unshare a user namespace from a multithreaded process, so a
// short-lived re-exec'd helper is cloned into them; it sets the hostname,
// brings up lo and writes the sysctls, then waits while the daemon pins its
// /proc/<pid>/ns/* and exits.
func CreatePinnedUserns(o UsernsOptions) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("create namespace dir: %w", err)
	}
	args := []string{HelperArg, o.Hostname}
	for k, v := range o.Sysctls {
		args = append(args, k+"="+v)
	}
	cmd := exec.Command(o.Binary, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC | syscall.CLONE_NEWUTS,
		UidMappings: sysMaps(o.UIDs),
		GidMappings: sysMaps(o.GIDs),
		Pdeathsig:   syscall.SIGKILL,
		// Root inside the namespace, so exec keeps the capabilities the
		// helper needs there (sethostname, lo, sysctls).
		Credential: &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start user namespace helper: %w", err)
	}
	// Whatever happens, the helper is told to go and is reaped.
	defer func() {
		stdin.Close()
		_ = cmd.Wait()
	}()
	line, _ := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		stdin.Close()
		_ = cmd.Wait()
		return fmt.Errorf("user namespace helper: %s", strings.TrimSpace(stderr.String()))
	}
	types := []Type{"user", Net, IPC, UTS}
	if err := PinFrom(cmd.Process.Pid, o.Dir, types); err != nil {
		return err
	}
	return nil
}

func sysMaps(m []IDMap) []syscall.SysProcIDMap {
	out := make([]syscall.SysProcIDMap, len(m))
	for i, x := range m {
		out[i] = syscall.SysProcIDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)}
	}
	return out
}

// HelperMain runs inside the new namespaces: args are the hostname, then
// key=value sysctls. It prints "ready" and waits for stdin to close.
func HelperMain(args []string) int {
	if err := setupHelper(args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

func setupHelper(args []string) error {
	if len(args) == 0 {
		return errors.New("usage: nshelper HOSTNAME [KEY=VALUE...]")
	}
	if args[0] != "" {
		if err := unix.Sethostname([]byte(args[0])); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	if err := loopbackUp(); err != nil {
		return err
	}
	for _, kv := range args[1:] {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.WriteFile(k, []byte(v), 0); err != nil {
			return fmt.Errorf("sysctl %s: %w", k, err)
		}
	}
	return nil
}
