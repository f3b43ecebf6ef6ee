package spec

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podNS is the namespace plan of one container.
type podNS struct {
	list     []specs.LinuxNamespace
	userns   bool
	uidMap   []specs.LinuxIDMapping
	gidMap   []specs.LinuxIDMapping
	hostNet  bool
	hostIPC  bool
	ownUTS   bool // a new UTS namespace: the hostname must be set in it
	hostPID  bool
	cgroupNS bool
}

// planNamespaces decides each namespace: joined by path from the sandbox,
// left out for host (NODE) modes, or new. UTS follows the network, as
// kubelet's hostNetwork implies the host's hostname. A cgroup namespace
// hides the host's cgroup tree on v2; containerd does not use one on v1 or
// for privileged containers, which need the real tree.
func planNamespaces(in Input) (podNS, error) {
	sc := in.Config.GetLinux().GetSecurityContext()
	opts := sc.GetNamespaceOptions()
	joined := map[specs.LinuxNamespaceType]string{}
	for _, n := range in.Namespaces {
		joined[n.Type] = n.Path
	}
	// Network and IPC are the pod's: a host-network pod pins no netns, and
	// a container of it that says nothing (critest's do) must not get a
	// new one.
	podOpts := in.Sandbox.GetLinux().GetSecurityContext().GetNamespaceOptions()
	p := podNS{
		hostNet: opts.GetNetwork() == runtimeapi.NamespaceMode_NODE || podOpts.GetNetwork() == runtimeapi.NamespaceMode_NODE,
		hostIPC: opts.GetIpc() == runtimeapi.NamespaceMode_NODE || podOpts.GetIpc() == runtimeapi.NamespaceMode_NODE,
	}
	add := func(t specs.LinuxNamespaceType, path string) {
		p.list = append(p.list, specs.LinuxNamespace{Type: t, Path: path})
	}
	add(specs.MountNamespace, "")
	if !p.hostNet {
		add(specs.NetworkNamespace, joined[specs.NetworkNamespace])
		add(specs.UTSNamespace, joined[specs.UTSNamespace])
		p.ownUTS = joined[specs.UTSNamespace] == ""
	}
	if !p.hostIPC {
		add(specs.IPCNamespace, joined[specs.IPCNamespace])
	}
	switch opts.GetPid() {
	case runtimeapi.NamespaceMode_POD:
		add(specs.PIDNamespace, joined[specs.PIDNamespace])
	case runtimeapi.NamespaceMode_CONTAINER:
		add(specs.PIDNamespace, "")
	case runtimeapi.NamespaceMode_NODE:
		p.hostPID = true
	case runtimeapi.NamespaceMode_TARGET:
		if in.TargetPIDNamespace == "" {
			return podNS{}, invalid(scField+"namespace_options.target_id", "target container %q has no pid namespace", opts.GetTargetId())
		}
		add(specs.PIDNamespace, in.TargetPIDNamespace)
	default:
		return podNS{}, invalid(scField+"namespace_options.pid", "unknown mode %d", opts.GetPid())
	}
	if err := p.planUser(in, opts.GetUsernsOptions(), joined[specs.UserNamespace]); err != nil {
		return podNS{}, err
	}
	if in.Host.CgroupV2 && !sc.GetPrivileged() {
		p.cgroupNS = true
		add(specs.CgroupNamespace, "")
	}
	return p, nil
}

// planUser adds the user namespace of a userns pod: joined when the
// sandbox pinned one, else new, with the pod's mappings in both cases
// (runc checks that they match a joined namespace's).
func (p *podNS) planUser(in Input, u *runtimeapi.UserNamespace, path string) error {
	const field = scField + "namespace_options.userns_options"
	// No userns_options is the host's user namespace (its zero mode is POD).
	mode := runtimeapi.NamespaceMode_NODE
	if u != nil {
		mode = u.GetMode()
	}
	switch {
	case mode == runtimeapi.NamespaceMode_NODE && path == "":
		return nil
	case mode != runtimeapi.NamespaceMode_NODE && mode != runtimeapi.NamespaceMode_POD:
		return invalid(field+".mode", "unsupported mode %s", mode)
	}
	p.uidMap, p.gidMap = in.UIDMappings, in.GIDMappings
	if len(p.uidMap) == 0 {
		p.uidMap = idMappings(u.GetUids())
	}
	if len(p.gidMap) == 0 {
		p.gidMap = idMappings(u.GetGids())
	}
	if len(p.uidMap) == 0 || len(p.gidMap) == 0 {
		return invalid(field, "a user namespace needs uid and gid mappings")
	}
	p.userns = true
	p.list = append(p.list, specs.LinuxNamespace{Type: specs.UserNamespace, Path: path})
	return nil
}

func idMappings(m []*runtimeapi.IDMapping) []specs.LinuxIDMapping {
	var out []specs.LinuxIDMapping
	for _, x := range m {
		out = append(out, specs.LinuxIDMapping{HostID: x.GetHostId(), ContainerID: x.GetContainerId(), Size: x.GetLength()})
	}
	return out
}

// WithNamespaces sets the namespaces; a type absent from ns is the host's.
func WithNamespaces(ns []specs.LinuxNamespace) SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.Namespaces = slices.Clone(ns)
		return nil
	}
}

// WithIDMappings sets the user namespace's uid and gid mappings.
func WithIDMappings(uids, gids []specs.LinuxIDMapping) SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.UIDMappings, s.Linux.GIDMappings = uids, gids
		return nil
	}
}

// WithHostname sets the hostname; only valid with a new UTS namespace,
// since a joined one already has the pod's.
func WithHostname(name string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Hostname = name
		return nil
	}
}

// WithHostSysfs replaces the sysfs mount by a recursive read-only bind of
// the host's /sys: a user namespace that does not own the network
// namespace may not mount sysfs (EPERM), so containerd does the same.
func WithHostSysfs(rro bool) SpecOpt {
	return func(s *specs.Spec) error {
		ro := "ro"
		if rro {
			ro = "rro"
		}
		for i, m := range s.Mounts {
			if m.Destination == "/sys" && m.Type == "sysfs" {
				s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys",
					Options: []string{"rbind", ro, "nosuid", "nodev", "noexec"}}
			}
		}
		return nil
	}
}
