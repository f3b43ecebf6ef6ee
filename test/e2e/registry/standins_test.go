package testregistry

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"golang.org/x/sys/unix"
)

// The tests below run the images' programs as a runtime would, in their own
// PID, mount and network namespaces and chrooted into the image, and check
// what critest checks of them.

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for namespaces and chroot")
	}
}

// rootfs unpacks the image served as ref into a temporary directory, with
// the /dev/null that a runtime would provide.
func rootfs(t *testing.T, ref string) string {
	t.Helper()
	var img Image
	for _, i := range reg.Images() {
		if i.Reference == ref {
			img = i
		}
	}
	dir := t.TempDir()
	untar := exec.Command("tar", "-x", "-p", "--same-owner", "-C", dir)
	untar.Stdin = mutate.Extract(pull(t, img))
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v: %s", ref, err, out)
	}
	if err := unix.Mknod(filepath.Join(dir, "dev/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	return dir
}

// sandbox runs args as PID 1 of new namespaces, chrooted into root.
func sandbox(ctx context.Context, root string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "unshare", append([]string{"--pid", "--net", "--mount", "--fork",
		"--kill-child", "--mount-proc", "--root=" + root}, args...)...)
}

func TestBusyboxRunsCritestCommands(t *testing.T) {
	needRoot(t)
	root := rootfs(t, e2e+"busybox:1.29-2")
	script := `sleep 30 & pgrep sleep >/dev/null && echo pgrep ok
ipcs -m >/dev/null && echo ipcs ok
id www-data`
	out, err := sandbox(t.Context(), root, "/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{"pgrep ok", "ipcs ok", "uid=33(www-data)"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
}

func TestNonewprivsHonoursSetuid(t *testing.T) {
	needRoot(t)
	root := rootfs(t, e2e+"nonewprivs:1.3")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"/usr/local/bin/nnp"}, "Effective uid: 0\n"},
		{[]string{"/bin/setpriv", "--nnp", "/usr/local/bin/nnp"}, "Effective uid: 1000\n"},
	} {
		cmd := exec.CommandContext(t.Context(), tc.args[0], tc.args[1:]...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
		if out, err := cmd.CombinedOutput(); err != nil || string(out) != tc.want {
			t.Errorf("%v as uid 1000: %q, %v; want %q", tc.args, out, err, tc.want)
		}
	}
}

func TestWebServers(t *testing.T) {
	needRoot(t)
	for _, tc := range []struct {
		ref   string
		cmd   string
		port  int
		stop  syscall.Signal
		nginx bool // check what critest checks of nginx
	}{
		{e2e + "nginx:1.14-2", "/usr/local/bin/nginx-foreground", 80, syscall.SIGTERM, true},
		{staging + "hostnet-nginx-amd64:latest", "/usr/local/bin/nginx-foreground", 12003, syscall.SIGQUIT, true},
		{e2e + "httpd:2.4.39-4", "/usr/local/bin/httpd-foreground", 80, syscall.SIGWINCH, false},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			root := rootfs(t, tc.ref)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			var log bytes.Buffer
			cmd := sandbox(ctx, root, tc.cmd)
			cmd.Stdout, cmd.Stderr = &log, &log
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// On failure, cancel kills unshare and, with --kill-child, its namespace.
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			pid := pid1(t, cmd.Process.Pid)

			probe := "ip link set lo up && until wget -q -O /dev/null http://127.0.0.1:" + strconv.Itoa(tc.port) +
				"/; do sleep 0.1; done"
			if tc.nginx {
				probe += " && pidof nginx && cat /var/run/nginx.pid /proc/1/cmdline"
			}
			out, err := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(pid), "-n", "-m", "-p", "-r", "-w",
				"/bin/sh", "-c", probe).CombinedOutput()
			if err != nil {
				t.Fatalf("probing: %v: %s", err, out)
			}
			if tc.nginx && !strings.Contains(string(out), "1\n1\nnginx: master process") {
				t.Errorf("pidof nginx, nginx.pid and PID 1's cmdline say %q", out)
			}
			if err := syscall.Kill(pid, tc.stop); err != nil {
				t.Fatal(err)
			}
			if err := <-exited; err != nil {
				t.Errorf("after %v: %v", tc.stop, err)
			}
			if !tc.nginx && !strings.Contains(log.String(), "httpd") {
				t.Errorf("log %q does not mention httpd", log.String())
			}
		})
	}
}

// pid1 returns the host PID of the first process of unshare's namespaces,
// once it runs the program: before, its root and /proc are still the host's.
func pid1(t *testing.T, unshare int) int {
	t.Helper()
	children := filepath.Join("/proc", strconv.Itoa(unshare), "task", strconv.Itoa(unshare), "children")
	for range 100 {
		data, err := os.ReadFile(children)
		if err != nil {
			t.Fatal(err)
		}
		if f := strings.Fields(string(data)); len(f) > 0 {
			comm, err := os.ReadFile(filepath.Join("/proc", f[0], "comm"))
			if err == nil && string(comm) != "unshare\n" {
				return atoi(t, f[0])
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("unshare started no program")
	return 0
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
