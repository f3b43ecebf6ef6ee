package spec

import (
	"cmp"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/containerd/errdefs"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/mountinfo"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// bind is one requested bind mount and the CRI field it came from.
type bind struct {
	field string
	m     *runtimeapi.Mount
}

// BindMounts turns the CRI mounts plus the sandbox files (/etc/hosts,
// /etc/resolv.conf, /etc/hostname, /dev/shm) and the termination log into
// OCI bind mounts, sorted so that a parent comes before its children. A
// CRI mount wins over a sandbox file at the same path. It also returns the
// rootfs propagation the mounts need ("" for the runtime's default).
func BindMounts(in Input) ([]specs.Mount, string, error) {
	binds, err := requestedBinds(in)
	if err != nil {
		return nil, "", err
	}
	var out []specs.Mount
	rootProp := ""
	for _, b := range binds {
		m, prop, err := in.bindMount(b)
		if err != nil {
			return nil, "", err
		}
		// rshared beats rslave: the rootfs must carry the strongest one.
		if prop == "rshared" || (prop == "rslave" && rootProp == "") {
			rootProp = prop
		}
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b specs.Mount) int {
		return cmp.Compare(strings.Count(a.Destination, "/"), strings.Count(b.Destination, "/"))
	})
	return out, rootProp, nil
}

// requestedBinds lists the CRI mounts, then the implicit ones nobody
// mounted over.
func requestedBinds(in Input) ([]bind, error) {
	var binds []bind
	taken := map[string]bool{}
	for i, m := range in.Config.GetMounts() {
		field := fmt.Sprintf("mounts[%d]", i)
		dst := m.GetContainerPath()
		if !path.IsAbs(dst) || path.Clean(dst) == "/" {
			return nil, invalid(field+".container_path", "%q must be an absolute path other than /", dst)
		}
		taken[path.Clean(dst)] = true
		binds = append(binds, bind{field, m})
	}
	ro := in.Config.GetLinux().GetSecurityContext().GetReadonlyRootfs()
	termPath := cmp.Or(in.TerminationMessagePath, "/dev/termination-log")
	implicit := []struct {
		field, dst, src string
		ro              bool
	}{
		{"sandbox /etc/hostname", "/etc/hostname", in.SandboxFiles.Hostname, ro},
		{"sandbox /etc/hosts", "/etc/hosts", in.SandboxFiles.Hosts, ro},
		{"sandbox /etc/resolv.conf", "/etc/resolv.conf", in.SandboxFiles.Resolv, ro},
		{"sandbox /dev/shm", "/dev/shm", in.SandboxFiles.Shm, false},
		{"termination message", termPath, in.TerminationMessageHostPath, false},
	}
	for _, f := range implicit {
		if f.src == "" || taken[path.Clean(f.dst)] {
			continue
		}
		// No idmap here: these files live on tmpfs, which idmaps only from
		// Linux 6.3, and they are world-readable anyway.
		binds = append(binds, bind{f.field, &runtimeapi.Mount{ContainerPath: f.dst, HostPath: f.src, Readonly: f.ro}})
	}
	return binds, nil
}

// bindMount checks one bind request against the host and returns its OCI
// mount and the propagation it asked for.
func (in Input) bindMount(b bind) (specs.Mount, string, error) {
	m := b.m
	src, err := in.bindSource(b)
	if err != nil {
		return specs.Mount{}, "", err
	}
	prop, err := in.propagation(b, src)
	if err != nil {
		return specs.Mount{}, "", err
	}
	ro, err := in.readonlyOpt(b)
	if err != nil {
		return specs.Mount{}, "", err
	}
	opts := []string{"rbind", prop, ro}
	extra, err := in.mountOptions(b)
	if err != nil {
		return specs.Mount{}, "", err
	}
	out := specs.Mount{
		Destination: path.Clean(m.GetContainerPath()),
		Type:        "bind",
		Source:      src,
		Options:     append(opts, extra...),
	}
	// An image volume is already idmapped where it is mounted, if at all
	// (containerd clears these too).
	if m.GetImage() == nil {
		out.UIDMappings = idMappings(m.GetUidMappings())
		out.GIDMappings = idMappings(m.GetGidMappings())
	}
	return out, prop, nil
}

// bindSource is the host path to bind: the host_path with symlinks
// resolved (the CRI says to follow them), which must exist — the CRI
// says the runtime should report an error for a missing one, and unlike
// containerd nothing is created on the host on a client's say-so — or the
// directory of an image volume, with image_sub_path resolved inside it.
func (in Input) bindSource(b bind) (string, error) {
	m := b.m
	if m.GetImage() != nil {
		return in.imageSource(b)
	}
	if m.GetHostPath() == "" {
		return "", invalid(b.field+".host_path", "empty")
	}
	src, err := filepath.EvalSymlinks(m.GetHostPath())
	if err != nil {
		return "", invalid(fmt.Sprintf("%s.host_path %q", b.field, m.GetHostPath()), "%v", unwrapPathError(err))
	}
	return src, nil
}

// imageSource resolves an image volume (KEP 4639): read-only by
// definition, no host_path, and an image_sub_path that must exist.
func (in Input) imageSource(b bind) (string, error) {
	m := b.m
	ref := m.GetImage().GetImage()
	switch {
	case m.GetHostPath() != "":
		return "", invalid(b.field+".host_path", "must be empty for an image mount")
	case !m.GetReadonly():
		return "", invalid(b.field+".readonly", "an image mount must be read-only")
	case ref == "":
		return "", invalid(b.field+".image.image", "empty")
	case in.ImageMounts == nil:
		return "", fmt.Errorf("%s.image: image volumes are not supported: %w", b.field, errdefs.ErrNotImplemented)
	}
	dir, err := in.ImageMounts(ref)
	if err != nil {
		return "", fmt.Errorf("%s.image %q: %w", b.field, ref, err)
	}
	sub := m.GetImageSubPath()
	if sub == "" {
		return dir, nil
	}
	// The image is untrusted: its symlinks resolve as if dir were "/".
	p, err := securejoin.SecureJoin(dir, sub)
	if err != nil {
		return "", invalid(b.field+".image_sub_path", "%q: %v", sub, err)
	}
	if _, err := os.Stat(p); err != nil {
		return "", invalid(b.field+".image_sub_path", "%q: not in image %s", sub, ref)
	}
	return p, nil
}

// propagation maps the CRI propagation to the bind's option. Propagation
// from the host needs the source's mount to be shared (or a slave, for
// HOST_TO_CONTAINER), otherwise nothing would ever propagate.
func (in Input) propagation(b bind, src string) (string, error) {
	p := b.m.GetPropagation()
	switch p {
	case runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		return "rprivate", nil
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER, runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
	default:
		return "", invalid(b.field+".propagation", "unknown mode %d", p)
	}
	lookup := in.SourcePropagation
	if lookup == nil {
		lookup = hostPropagation
	}
	shared, slave, err := lookup(src)
	if err != nil {
		return "", fmt.Errorf("%s.propagation: %s: %w", b.field, src, err)
	}
	if p == runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL {
		if !shared {
			return "", fmt.Errorf("%s.propagation %s: %s is not on a shared mount: %w", b.field, p, src, errdefs.ErrFailedPrecondition)
		}
		return "rshared", nil
	}
	if !shared && !slave {
		return "", fmt.Errorf("%s.propagation %s: %s is on a private mount: %w", b.field, p, src, errdefs.ErrFailedPrecondition)
	}
	return "rslave", nil
}

// readonlyOpt is "rw", "ro" or, for recursive_read_only, "rro", which the
// CRI allows only read-only and private, and which needs mount_setattr.
func (in Input) readonlyOpt(b bind) (string, error) {
	m := b.m
	switch {
	case !m.GetRecursiveReadOnly() && m.GetReadonly():
		return "ro", nil
	case !m.GetRecursiveReadOnly():
		return "rw", nil
	case !m.GetReadonly():
		return "", invalid(b.field+".recursive_read_only", "requires readonly")
	case m.GetPropagation() != runtimeapi.MountPropagation_PROPAGATION_PRIVATE:
		return "", invalid(b.field+".recursive_read_only", "requires propagation PROPAGATION_PRIVATE")
	case !in.Host.RROSupported:
		return "", invalid(b.field+".recursive_read_only", "not supported by this runtime handler or kernel")
	}
	return "rro", nil
}

// bindFlags are the mount_options a bind may carry: flags the kernel
// applies on the bind's remount. Propagation and read-only have their own
// CRI fields, and anything else would reach mount(2) as data and fail there.
var bindFlags = []string{
	"nosuid", "suid", "nodev", "dev", "noexec", "exec",
	"noatime", "atime", "relatime", "norelatime", "strictatime", "nostrictatime",
	"nodiratime", "diratime", "nosymfollow", "symfollow",
}

// mountOptions validates the v0.37 mount_options. The recursive forms
// ("rnoexec", ...) need mount_setattr like rro.
func (in Input) mountOptions(b bind) ([]string, error) {
	var out []string
	for i, o := range b.m.GetMountOptions() {
		flag, recursive := o, false
		if strings.HasPrefix(o, "r") && slices.Contains(bindFlags, o[1:]) {
			flag, recursive = o[1:], true
		}
		field := fmt.Sprintf("%s.mount_options[%d]", b.field, i)
		if !slices.Contains(bindFlags, flag) {
			return nil, invalid(field, "%q is not a bind mount flag", o)
		}
		if recursive && !in.Host.RROSupported {
			return nil, invalid(field, "%q needs recursive mount attributes, not supported here", o)
		}
		out = append(out, o)
	}
	return out, nil
}

// hostPropagation reads the host's mount table for the mount holding p.
func hostPropagation(p string) (shared, slave bool, err error) {
	mounts, err := mountinfo.GetMounts(mountinfo.ParentsFilter(p))
	if err != nil {
		return false, false, err
	}
	if len(mounts) == 0 {
		return false, false, fmt.Errorf("no mount holds %s", p)
	}
	// The deepest parent is the mount p is on; of mounts stacked on the
	// same point, the last listed is on top.
	m := mounts[0]
	for _, c := range mounts[1:] {
		if len(c.Mountpoint) >= len(m.Mountpoint) {
			m = c
		}
	}
	for _, opt := range strings.Fields(m.Optional) {
		shared = shared || strings.HasPrefix(opt, "shared:")
		slave = slave || strings.HasPrefix(opt, "master:")
	}
	return shared, slave, nil
}

// unwrapPathError keeps an *fs.PathError's cause: the path is already in
// the message.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// WithMounts adds the bind mounts after the default ones. A default mount
// at or below a bind's destination is dropped: the bind replaces it, and
// one below would otherwise be mounted first and then hidden (containerd
// does this for /dev only, which leaves /sys/fs/cgroup under a bound /sys).
func WithMounts(binds []specs.Mount) SpecOpt {
	return func(s *specs.Spec) error {
		kept := s.Mounts[:0:0]
		for _, m := range s.Mounts {
			d := path.Clean(m.Destination)
			if !slices.ContainsFunc(binds, func(b specs.Mount) bool { return under(d, b.Destination) }) {
				kept = append(kept, m)
			}
		}
		s.Mounts = append(kept, binds...)
		return nil
	}
}

// under reports whether p is dir or below it; both are clean and absolute.
func under(p, dir string) bool {
	return p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/")
}

// WithRootfsPropagation sets the rootfs mount's propagation; rslave or
// rshared binds only propagate if the rootfs does too.
func WithRootfsPropagation(p string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.RootfsPropagation = p
		return nil
	}
}
