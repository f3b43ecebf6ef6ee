package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// skippedDevDirs are not walked when copying the host's /dev: they hold
// per-namespace or runtime state, not device nodes to hand over (the list
// is containerd's, from runc and LXD bug reports).
var skippedDevDirs = map[string]bool{
	"pts": true, "shm": true, "fd": true, "mqueue": true,
	".lxc": true, ".lxd-mounts": true, ".udev": true,
}

// Devices resolves the CRI devices against the host's device nodes in
// fsys (rooted at "/"): each is created in the container with the host
// node's type and numbers and allowed in the device cgroup with the
// requested permissions. A host directory stands for every device below it.
func Devices(fsys fs.FS, reqs []*runtimeapi.Device) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	for i, d := range reqs {
		field := fmt.Sprintf("devices[%d]", i)
		perms := d.GetPermissions()
		if perms == "" {
			perms = "rwm"
		}
		if strings.Trim(perms, "rwm") != "" {
			return nil, nil, invalid(field+".permissions", "%q is not a subset of \"rwm\"", d.GetPermissions())
		}
		host := d.GetHostPath()
		if !path.IsAbs(host) {
			return nil, nil, invalid(field+".host_path", "%q is not absolute", host)
		}
		ctr := d.GetContainerPath()
		if ctr == "" {
			ctr = host
		}
		if !path.IsAbs(ctr) {
			return nil, nil, invalid(field+".container_path", "%q is not absolute", ctr)
		}
		found, err := devicesAt(fsys, host, path.Clean(ctr), true)
		if err != nil {
			return nil, nil, invalid(field+".host_path", "%v", err)
		}
		for _, dev := range found {
			devs = append(devs, dev)
			rules = append(rules, specs.LinuxDeviceCgroup{
				Allow: true, Type: dev.Type, Major: &dev.Major, Minor: &dev.Minor, Access: perms,
			})
		}
	}
	return devs, rules, nil
}

// HostDevices are all the device nodes of the host's /dev, for privileged
// containers.
func HostDevices(fsys fs.FS) ([]specs.LinuxDevice, error) {
	return devicesAt(fsys, "/dev", "/dev", true)
}

// devicesAt returns the device at host (symlinks followed when top, as the
// CRI asks) or, for a directory, every device below it, named under ctr.
// Inside a directory, symlinks and non-devices are skipped, and FIFOs too
// (runc would mknod them; they are not devices to share).
func devicesAt(fsys fs.FS, host, ctr string, top bool) ([]specs.LinuxDevice, error) {
	name := strings.TrimPrefix(path.Clean(host), "/")
	if name == "" {
		name = "."
	}
	var info fs.FileInfo
	var err error
	if top {
		info, err = fs.Stat(fsys, name)
	} else {
		info, err = lstat(fsys, name)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", host, unwrapPathError(err))
	}
	if !info.IsDir() {
		dev, ok := deviceFromInfo(info, ctr)
		if !ok {
			if top {
				return nil, fmt.Errorf("%s is not a device node", host)
			}
			return nil, nil
		}
		return []specs.LinuxDevice{dev}, nil
	}
	entries, err := fs.ReadDir(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", host, unwrapPathError(err))
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink != 0 || (e.IsDir() && skippedDevDirs[e.Name()]) || e.Name() == "console" {
			continue
		}
		sub, err := devicesAt(fsys, path.Join(host, e.Name()), path.Join(ctr, e.Name()), false)
		if errors.Is(err, fs.ErrNotExist) {
			continue // gone while listing: udev at work
		}
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return out, nil
}

// lstat is fs.Stat without following a final symlink, where fsys can.
func lstat(fsys fs.FS, name string) (fs.FileInfo, error) {
	if l, ok := fsys.(fs.ReadLinkFS); ok {
		return l.Lstat(name)
	}
	return fs.Stat(fsys, name)
}

// deviceFromInfo is the OCI device for a char or block node. The numbers,
// owner and group come from the stat_t under info.Sys(), which os.DirFS
// provides and tests fake.
func deviceFromInfo(info fs.FileInfo, ctr string) (specs.LinuxDevice, bool) {
	mode := info.Mode()
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || mode&fs.ModeDevice == 0 {
		return specs.LinuxDevice{}, false
	}
	typ := "b"
	if mode&fs.ModeCharDevice != 0 {
		typ = "c"
	}
	perm := mode.Perm()
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path:     ctr,
		Type:     typ,
		Major:    int64(unix.Major(uint64(st.Rdev))),
		Minor:    int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &perm,
		UID:      &uid,
		GID:      &gid,
	}, true
}

// WithDevices adds device nodes and their cgroup rules. A device at a
// path already present replaces it (a CRI device over a privileged
// container's copy of /dev).
func WithDevices(devs []specs.LinuxDevice, rules []specs.LinuxDeviceCgroup) SpecOpt {
	return func(s *specs.Spec) error {
		for _, d := range devs {
			replaced := false
			for i := range s.Linux.Devices {
				if s.Linux.Devices[i].Path == d.Path {
					s.Linux.Devices[i], replaced = d, true
				}
			}
			if !replaced {
				s.Linux.Devices = append(s.Linux.Devices, d)
			}
		}
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, rules...)
		return nil
	}
}

// WithAllDevicesAllowed lets the container use every device (privileged).
func WithAllDevicesAllowed(s *specs.Spec) error {
	s.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	return nil
}

// hostFS is the host root used when Input.DevFS is nil.
func hostFS() fs.FS { return os.DirFS("/") }
