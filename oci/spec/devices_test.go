package spec

import (
	"io/fs"
	"reflect"
	"syscall"
	"testing"
	"testing/fstest"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakeDev is a host root with a few device nodes, made without mknod.
func fakeDev() fstest.MapFS {
	char := func(major, minor uint32) *fstest.MapFile {
		return &fstest.MapFile{Mode: fs.ModeDevice | fs.ModeCharDevice | 0o666,
			Sys: &syscall.Stat_t{Rdev: unix.Mkdev(major, minor)}}
	}
	return fstest.MapFS{
		"dev/null":           char(1, 3),
		"dev/zero":           char(1, 5),
		"dev/console":        char(5, 1),
		"dev/fuse":           char(10, 229),
		"dev/sda":            {Mode: fs.ModeDevice | 0o660, Sys: &syscall.Stat_t{Rdev: unix.Mkdev(8, 0), Gid: 6}},
		"dev/dri/card0":      char(226, 0),
		"dev/dri/renderD128": char(226, 128),
		"dev/pts/0":          char(136, 0),
		"dev/shm/file":       {Data: []byte("x")},
		"dev/log":            {Mode: fs.ModeSymlink, Data: []byte("/run/systemd/journal/dev-log")},
		"dev/initctl":        {Mode: fs.ModeNamedPipe | 0o600, Sys: &syscall.Stat_t{}},
		"dev/core":           {Mode: fs.ModeSymlink, Data: []byte("/proc/kcore")},
		"etc/hostname":       {Data: []byte("host")},
	}
}

func TestDevices(t *testing.T) {
	u32 := func(v uint32) *uint32 { return &v }
	mode := func(m fs.FileMode) *fs.FileMode { return &m }
	dev := func(path, typ string, major, minor int64, m fs.FileMode, gid uint32) specs.LinuxDevice {
		return specs.LinuxDevice{Path: path, Type: typ, Major: major, Minor: minor, FileMode: mode(m), UID: u32(0), GID: u32(gid)}
	}
	rule := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: &minor, Access: access}
	}
	for _, tc := range []struct {
		name      string
		reqs      []*runtimeapi.Device
		wantDevs  []specs.LinuxDevice
		wantRules []specs.LinuxDeviceCgroup
		err       string
	}{
		{name: "char device renamed", reqs: []*runtimeapi.Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/myfuse", Permissions: "rw"}},
			wantDevs:  []specs.LinuxDevice{dev("/dev/myfuse", "c", 10, 229, 0o666, 0)},
			wantRules: []specs.LinuxDeviceCgroup{rule("c", 10, 229, "rw")}},
		{name: "block device, default path and perms", reqs: []*runtimeapi.Device{{HostPath: "/dev/sda"}},
			wantDevs:  []specs.LinuxDevice{dev("/dev/sda", "b", 8, 0, 0o660, 6)},
			wantRules: []specs.LinuxDeviceCgroup{rule("b", 8, 0, "rwm")}},
		{name: "directory expands", reqs: []*runtimeapi.Device{{HostPath: "/dev/dri", ContainerPath: "/dev/gpu", Permissions: "mrw"}},
			wantDevs:  []specs.LinuxDevice{dev("/dev/gpu/card0", "c", 226, 0, 0o666, 0), dev("/dev/gpu/renderD128", "c", 226, 128, 0o666, 0)},
			wantRules: []specs.LinuxDeviceCgroup{rule("c", 226, 0, "mrw"), rule("c", 226, 128, "mrw")}},
		{name: "missing", reqs: []*runtimeapi.Device{{HostPath: "/dev/nope"}}, err: "devices[0].host_path: /dev/nope: file does not exist"},
		{name: "not a device", reqs: []*runtimeapi.Device{{HostPath: "/etc/hostname"}}, err: "not a device node"},
		{name: "bad permissions", reqs: []*runtimeapi.Device{{HostPath: "/dev/fuse", Permissions: "rwx"}}, err: "devices[0].permissions"},
		{name: "relative host path", reqs: []*runtimeapi.Device{{HostPath: "dev/fuse"}}, err: "devices[0].host_path"},
		{name: "relative container path", reqs: []*runtimeapi.Device{{HostPath: "/dev/fuse", ContainerPath: "fuse"}}, err: "devices[0].container_path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			devs, rules, err := Devices(fakeDev(), tc.reqs)
			wantErr(t, err, tc.err)
			if !reflect.DeepEqual(devs, tc.wantDevs) || !reflect.DeepEqual(rules, tc.wantRules) {
				t.Fatalf("got %+v %+v\nwant %+v %+v", devs, rules, tc.wantDevs, tc.wantRules)
			}
		})
	}
}

// Build keeps the default deny rule and standard devices, then allows the
// requested one.
func TestDeviceRulesInSpec(t *testing.T) {
	in := baseInput(t)
	in.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rwm"}}
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	rules := r.Spec.Linux.Resources.Devices
	if rules[0].Allow || rules[0].Access != "rwm" {
		t.Fatalf("first rule %+v is not deny-all", rules[0])
	}
	last := rules[len(rules)-1]
	if !last.Allow || *last.Major != 10 || *last.Minor != 229 {
		t.Fatalf("last rule %+v is not /dev/fuse", last)
	}
	if len(r.Spec.Linux.Devices) != 1 || r.Spec.Linux.Devices[0].Path != "/dev/fuse" {
		t.Fatalf("devices %+v", r.Spec.Linux.Devices)
	}
}

// The real /dev of the host is readable through os.DirFS and holds at
// least /dev/null.
func TestHostDevicesReal(t *testing.T) {
	devs, err := HostDevices(hostFS())
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		if d.Path == "/dev/null" && d.Type == "c" && d.Major == 1 && d.Minor == 3 {
			return
		}
	}
	t.Fatalf("no /dev/null among %d host devices", len(devs))
}
