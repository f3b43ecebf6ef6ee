package spec

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// defaultPath is $PATH when neither the image nor the config sets it.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// defaultNofile is RLIMIT_NOFILE as containerd's systemd unit gives it.
const defaultNofile = 1048576

// DefaultCaps is what a container that asks for nothing gets: Docker's and
// containerd's set.
func DefaultCaps() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
		"CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
		"CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
		"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
}

// DefaultMaskedPaths are hidden from unprivileged containers; the same list
// as kubelet's ProcMount Default and containerd's.
func DefaultMaskedPaths() []string {
	return []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
}

// DefaultReadonlyPaths are read-only in unprivileged containers.
func DefaultReadonlyPaths() []string {
	return []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
}

// defaultMounts are containerd's, without /run (CRI drops it: images own
// /run) and with the cgroup mount CRI adds.
func defaultMounts() []specs.Mount {
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}

// defaultDeviceRules deny every device but the ones any process expects
// (containerd's WithDefaultUnixDevices). runc adds the same set itself; crun
// does not, so they are spelled out.
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	rule := func(major, minor int64) specs.LinuxDeviceCgroup {
		r := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Access: "rwm"}
		if minor >= 0 {
			r.Minor = &minor
		}
		return r
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		rule(1, 3),    // null
		rule(1, 5),    // zero
		rule(1, 7),    // full
		rule(1, 8),    // random
		rule(1, 9),    // urandom
		rule(5, 0),    // tty
		rule(5, 1),    // console
		rule(5, 2),    // ptmx
		rule(136, -1), // pts/*
	}
}

// DefaultSpec is the starting point of every container spec: default
// mounts, capabilities, masked paths and device rules, a new mount
// namespace, uid 0 and cwd "/".
func DefaultSpec() *specs.Spec {
	return &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{},
		Process: &specs.Process{
			Cwd: "/",
			Env: []string{defaultPath},
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  DefaultCaps(),
				Effective: DefaultCaps(),
				Permitted: DefaultCaps(),
			},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: defaultNofile, Soft: defaultNofile}},
		},
		Mounts: defaultMounts(),
		Linux: &specs.Linux{
			MaskedPaths:   DefaultMaskedPaths(),
			ReadonlyPaths: DefaultReadonlyPaths(),
			Resources:     &specs.LinuxResources{Devices: defaultDeviceRules()},
			Namespaces:    []specs.LinuxNamespace{{Type: specs.MountNamespace}},
		},
	}
}
