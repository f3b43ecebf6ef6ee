package spec

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// KnownCaps are the Linux capabilities by number (linux/capability.h up to
// 6.x); CapBnd bit i is KnownCaps[i].
var KnownCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// Capabilities computes the container's capability sets from the CRI
// request, in containerd's order: add ALL (the host's bounding set), drop
// ALL, the individual adds, the individual drops, so "add ALL, drop
// CHOWN" means everything but CHOWN. A privileged container gets the
// host's bounding set whatever it dropped. Capabilities are never put in
// the inheritable set except for ambient ones: inheritable capabilities
// without ambient ones only let file capabilities escalate
// (CVE-2022-24769).
func Capabilities(c *runtimeapi.Capability, privileged bool, hostCaps []string) (*specs.LinuxCapabilities, error) {
	if len(hostCaps) == 0 {
		hostCaps = KnownCaps
	}
	const field = "linux.security_context.capabilities."
	add, addAll, err := capList(c.GetAddCapabilities(), hostCaps, field+"add_capabilities")
	if err != nil {
		return nil, err
	}
	drop, dropAll, err := capList(c.GetDropCapabilities(), nil, field+"drop_capabilities")
	if err != nil {
		return nil, err
	}
	ambient, _, err := capList(c.GetAddAmbientCapabilities(), hostCaps, field+"add_ambient_capabilities")
	if err != nil {
		return nil, err
	}
	set := DefaultCaps()
	switch {
	case privileged:
		set, drop, dropAll = slices.Clone(hostCaps), nil, false
	case addAll:
		set = slices.Clone(hostCaps)
	}
	if dropAll {
		set = nil
	}
	set = union(set, add, ambient)
	set = slices.DeleteFunc(set, func(c string) bool { return slices.Contains(drop, c) })
	ambient = slices.DeleteFunc(ambient, func(c string) bool { return slices.Contains(drop, c) })
	return &specs.LinuxCapabilities{
		Bounding:    set,
		Effective:   slices.Clone(set),
		Permitted:   slices.Clone(set),
		Inheritable: slices.Clone(ambient),
		Ambient:     ambient,
	}, nil
}

// capList normalises names ("chown", "CAP_CHOWN") and reports whether
// "ALL" was among them. Names must be known and, when allowed is set, in
// it: asking for a capability the host lacks would only fail later in
// runc with a bare EPERM.
func capList(names, allowed []string, field string) (caps []string, all bool, err error) {
	for i, n := range names {
		c := strings.ToUpper(n)
		if c == "ALL" {
			all = true
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		f := fmt.Sprintf("%s[%d]", field, i)
		if !slices.Contains(KnownCaps, c) {
			return nil, false, invalid(f, "unknown capability %q", n)
		}
		if allowed != nil && !slices.Contains(allowed, c) {
			return nil, false, invalid(f, "%s is not in this host's bounding set", c)
		}
		if !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return caps, all, nil
}

// union appends to base each capability of the lists it lacks.
func union(base []string, lists ...[]string) []string {
	for _, l := range lists {
		for _, c := range l {
			if !slices.Contains(base, c) {
				base = append(base, c)
			}
		}
	}
	return base
}

// WithCapabilities sets the process's capability sets.
func WithCapabilities(c *specs.LinuxCapabilities) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.Capabilities = c
		return nil
	}
}

// WithPrivileged lifts what privileged lifts (see the CRI's
// LinuxContainerSecurityContext.privileged): masked and read-only paths,
// read-only /sys and cgroupfs, AppArmor and seccomp. Capabilities and
// devices are set by their own options.
func WithPrivileged(s *specs.Spec) error {
	s.Linux.MaskedPaths = nil
	s.Linux.ReadonlyPaths = nil
	s.Linux.Seccomp = nil
	s.Process.ApparmorProfile = ""
	for i, m := range s.Mounts {
		if m.Type == "sysfs" || m.Type == "cgroup" {
			s.Mounts[i].Options = replaceOpt(m.Options, "ro", "rw")
		}
	}
	return nil
}

// replaceOpt returns opts with old replaced by repl.
func replaceOpt(opts []string, old, repl string) []string {
	out := slices.Clone(opts)
	for i, o := range out {
		if o == old {
			out[i] = repl
		}
	}
	return out
}

// WithMaskedPaths sets the paths hidden from the container.
func WithMaskedPaths(paths []string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.MaskedPaths = paths
		return nil
	}
}

// WithReadonlyPaths sets the paths made read-only in the container.
func WithReadonlyPaths(paths []string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.ReadonlyPaths = paths
		return nil
	}
}
