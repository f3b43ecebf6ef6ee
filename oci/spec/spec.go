package spec

import (
	"fmt"
	"io/fs"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Input is everything Build needs to know about one container.
type Input struct {
	ID        string
	SandboxID string
	// ImageName goes into the io.kubernetes.cri.image-name annotation;
	// "" means the config's user_specified_image, else its image.
	ImageName string
	Config    *runtimeapi.ContainerConfig
	Sandbox   *runtimeapi.PodSandboxConfig
	Image     ocispec.ImageConfig
	// RootfsPath is the container's mounted rootfs; /etc/passwd and
	// /etc/group are read from it, confined to it.
	RootfsPath string

	// Namespaces are the sandbox's pinned namespaces to join by path (net,
	// ipc, uts, pid when the pod shares one, user for a userns pod). Other
	// types are ignored. A type neither here nor in host mode is created new.
	Namespaces []specs.LinuxNamespace
	// TargetPIDNamespace is the pid namespace path of the container named
	// by namespace_options.target_id (pid mode TARGET).
	TargetPIDNamespace string
	// UIDMappings and GIDMappings are the userns pod's mappings; when empty,
	// namespace_options.userns_options is used.
	UIDMappings, GIDMappings []specs.LinuxIDMapping

	// Hostname is exported as $HOSTNAME ("" = the sandbox config's), and
	// set as the spec hostname only when the container gets its own UTS
	// namespace.
	Hostname     string
	SandboxFiles SandboxFiles
	// TerminationMessageHostPath, when set, is bound read-write at
	// TerminationMessagePath (default /dev/termination-log) unless a CRI
	// mount already targets it (kubelet sends its own). The caller creates it.
	TerminationMessageHostPath string
	TerminationMessagePath     string

	// CgroupsPath is used verbatim (cgroupfs path or systemd slice:prefix:name).
	CgroupsPath string
	Host        HostFacts
	// SeccompProfileRoot is the base of relative Localhost seccomp profiles.
	SeccompProfileRoot string
	// ImageMounts resolves a Mount.image reference to the host directory
	// where that image is mounted read-only.
	ImageMounts func(imageRef string) (string, error)
	// SourcePropagation reports whether the host mount holding path is
	// shared and whether it is a slave; nil reads /proc/self/mountinfo.
	SourcePropagation func(path string) (shared, slave bool, err error)
	// DevFS is the host root used to look up device nodes (paths are read
	// without the leading "/"); nil means os.DirFS("/").
	DevFS fs.FS
}

// SandboxFiles are host paths bound over the container's /etc/hosts,
// /etc/resolv.conf, /etc/hostname and /dev/shm; "" leaves the image's file
// (or, for /dev/shm, a private tmpfs).
type SandboxFiles struct{ Hosts, Resolv, Hostname, Shm string }

// HostFacts are what the daemon found out about its host at start.
type HostFacts struct {
	// BoundingCaps is the daemon's own bounding set ("CAP_X" names):
	// privileged and add ALL get exactly these, explicit adds must be in it.
	// Empty means every capability this package knows.
	BoundingCaps []string
	// HugetlbAvailable: else hugepage limits are dropped, as containerd
	// does, because kubelet sends them on every container.
	HugetlbAvailable bool
	// SwapAvailable: the memory cgroup can limit swap.
	SwapAvailable bool
	// RROSupported: the runtime handler and kernel do recursive mount
	// attributes (mount_setattr), needed by recursive_read_only.
	RROSupported bool
	CgroupV2     bool
	// OOMScoreAdjMin is the lowest oom_score_adj this host lets us set:
	// -1000 with CAP_SYS_RESOURCE, else the daemon's own oom_score_adj.
	OOMScoreAdjMin int
	// NofileMax caps RLIMIT_NOFILE (the daemon's hard limit when it cannot
	// raise it); 0 means no cap below the default of 1048576.
	NofileMax uint64
	// AppArmorEnabled: /sys/kernel/security/apparmor exists.
	AppArmorEnabled bool
	// AppArmorDefaultProfile is the loaded profile applied for
	// RuntimeDefault; "" applies none.
	AppArmorDefaultProfile string
}

// Result is the built spec and the user it runs as.
type Result struct {
	Spec *specs.Spec
	User UserInfo
}

// UserInfo is the identity actually applied, for ContainerStatus.
type UserInfo struct {
	UID, GID       uint32
	AdditionalGIDs []uint32
	// Home is the user's home directory from /etc/passwd ("/" if unknown).
	Home string
}

// SpecOpt changes one aspect of a spec.
type SpecOpt func(*specs.Spec) error

// Apply runs opts in order and stops at the first error.
func Apply(s *specs.Spec, opts ...SpecOpt) error {
	for _, o := range opts {
		if err := o(s); err != nil {
			return err
		}
	}
	return nil
}

// Build returns the OCI spec for in. It reads only the files named in the
// package documentation and writes nothing.
func Build(in Input) (*Result, error) {
	if in.Config == nil {
		return nil, invalid("config", "missing")
	}
	if in.RootfsPath == "" {
		return nil, invalid("rootfs", "path missing")
	}
	if len(in.Config.GetCDIDevices()) > 0 {
		return nil, fmt.Errorf("CDI_devices: CDI is not supported: %w", errdefs.ErrNotImplemented)
	}
	sc := in.Config.GetLinux().GetSecurityContext()
	if sc.GetPrivileged() && !in.Sandbox.GetLinux().GetSecurityContext().GetPrivileged() {
		return nil, invalid("linux.security_context.privileged", "the pod sandbox is not privileged")
	}
	proc, user, err := processOpts(in)
	if err != nil {
		return nil, err
	}
	sec, err := securityOpts(in)
	if err != nil {
		return nil, err
	}
	lin, err := linuxOpts(in)
	if err != nil {
		return nil, err
	}
	s := DefaultSpec()
	// Order matters in two places: privileged overrides what came before
	// it, and seccomp's conditional rules read the final capability set,
	// so securityOpts come last and end with seccomp.
	if err := Apply(s, append(append(proc, lin...), sec...)...); err != nil {
		return nil, err
	}
	return &Result{Spec: s, User: user}, nil
}

// invalid is the error for bad input in the CRI field named by field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}
