package testregistry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// Accounts of upstream busybox images, which critest's user tests resolve.
const (
	passwd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`
	group = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
plugdev:x:46:
staff:x:50:
lock:x:54:
netdev:x:82:
users:x:100:
nogroup:x:65534:
`
)

// pgrepScript stands in for the pgrep applet, which Debian's busybox lacks;
// critest runs `pgrep sleep`.
const pgrepScript = `#!/bin/sh
# pgrep PATTERN: print the PIDs of processes whose name matches the
# extended regular expression PATTERN; exit 1 if there are none.
[ $# -eq 1 ] || { echo "usage: pgrep PATTERN" >&2; exit 2; }
for dir in /proc/[0-9]*; do
	read -r name 2>/dev/null <"$dir/comm" && echo "${dir#/proc/} $name"
done | awk -v pattern="$1" '
	{ pid = $1; sub(/^[0-9]+ /, "") }
	$0 ~ pattern { print pid; found = 1 }
	END { exit !found }'
`

// busyboxTree returns the userland most images start from, made of Debian's
// dynamically linked busybox. Not busybox-static: that one is built with a
// standalone shell, so `sh -c ls` runs the applet in-process instead of
// exec'ing /bin/ls, and critest's MaskedPaths and process tests see the
// difference. Applets are hard links, not symlinks: masking /bin/ls bind-mounts
// over its path, which for a symlink would land on busybox and take sh with it.
func busyboxTree(ctx context.Context, deb string) (tree, error) {
	tmp, err := os.MkdirTemp("", "testregistry-busybox-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if _, err := output(exec.CommandContext(ctx, "dpkg-deb", "-x", deb, tmp)); err != nil {
		return nil, err
	}
	bin := filepath.Join(tmp, "bin", "busybox")
	list, err := output(exec.CommandContext(ctx, bin, "--list"))
	if err != nil {
		return nil, err
	}
	applets := strings.Fields(string(list))
	// busybox has no ipcs applet; critest's IPC tests run util-linux's.
	const ipcs = "/usr/bin/ipcs"
	libs, err := sharedLibs(ctx, bin, ipcs)
	if err != nil {
		return nil, err
	}

	t := tree{}
	for _, dir := range []string{"bin", "dev", "etc", "home", "lib", "proc", "run", "sys", "usr/bin", "usr/sbin", "usr/local/bin", "var"} {
		t.dir(dir, 0o755)
	}
	t.dir("root", 0o700)
	t.dir("tmp", 0o1777)
	t.symlink("var/run", "../run")
	t.file("etc/passwd", 0o644, []byte(passwd))
	t.file("etc/group", 0o644, []byte(group))
	for _, f := range append([]string{bin, ipcs}, libs...) {
		name := strings.TrimPrefix(f, "/")
		if f == bin {
			name = "bin/busybox"
		}
		if err := t.hostFile(name, f); err != nil {
			return nil, err
		}
	}
	for _, applet := range applets {
		t.hardlink("bin/"+applet, "bin/busybox")
	}
	if !slices.Contains(applets, "pgrep") {
		t.file("usr/bin/pgrep", 0o755, []byte(pgrepScript))
	}
	return t, nil
}

// hostFile adds the host file src (following symlinks) as name, keeping its
// permissions.
func (t tree) hostFile(name, src string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	t.file(name, int64(fi.Mode().Perm()), data)
	return nil
}

// sharedLibs returns the paths ldd reports for the binaries' shared
// libraries and dynamic loader, where the loader will look for them.
func sharedLibs(ctx context.Context, bins ...string) ([]string, error) {
	var libs []string
	for _, bin := range bins {
		out, err := output(exec.CommandContext(ctx, "ldd", bin))
		if err != nil {
			return nil, err
		}
		for line := range strings.Lines(string(out)) {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				libs = append(libs, f[2])
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				libs = append(libs, f[0])
			}
		}
	}
	slices.Sort(libs)
	return slices.Compact(libs), nil
}

// busyboxDeb returns Debian's busybox package kept in dir, downloading it
// with apt the first time; apt's lists are refreshed only if that fails.
func busyboxDeb(ctx context.Context, dir string) (string, error) {
	if deb := findDeb(dir); deb != "" {
		return deb, nil
	}
	download := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", "download", "busybox")
		cmd.Dir = dir
		_, err := output(cmd)
		return err
	}
	if err := download(); err != nil {
		if _, uerr := output(exec.CommandContext(ctx, "apt-get", "update")); uerr != nil {
			return "", errors.Join(err, uerr)
		}
		if err := download(); err != nil {
			return "", err
		}
	}
	if deb := findDeb(dir); deb != "" {
		return deb, nil
	}
	return "", fmt.Errorf("apt-get download busybox left no busybox_*.deb in %s", dir)
}

func findDeb(dir string) string {
	debs, _ := filepath.Glob(filepath.Join(dir, "busybox_*.deb"))
	if len(debs) == 0 {
		return ""
	}
	slices.Sort(debs)
	return debs[len(debs)-1]
}

// output runs cmd and returns its stdout; a failure carries its stderr.
func output(cmd *exec.Cmd) ([]byte, error) {
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(cmd.Args, " "), err, strings.TrimSpace(string(exitErr.Stderr)))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	return out, nil
}
