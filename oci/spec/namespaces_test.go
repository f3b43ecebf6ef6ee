package spec

import (
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestNamespaces(t *testing.T) {
	const (
		pod       = runtimeapi.NamespaceMode_POD
		container = runtimeapi.NamespaceMode_CONTAINER
		node      = runtimeapi.NamespaceMode_NODE
		target    = runtimeapi.NamespaceMode_TARGET
	)
	ns := func(t specs.LinuxNamespaceType, p string) specs.LinuxNamespace {
		return specs.LinuxNamespace{Type: t, Path: p}
	}
	mnt := ns(specs.MountNamespace, "")
	net, ipc, uts := ns(specs.NetworkNamespace, "/run/ns/s1/net"), ns(specs.IPCNamespace, "/run/ns/s1/ipc"), ns(specs.UTSNamespace, "/run/ns/s1/uts")
	userMaps := []*runtimeapi.IDMapping{{HostId: 100000, ContainerId: 0, Length: 65536}}
	for _, tc := range []struct {
		name       string
		opts       *runtimeapi.NamespaceOption
		join       []specs.LinuxNamespace // extra sandbox namespaces
		target     string
		cgroupV2   bool
		privileged bool
		want       []specs.LinuxNamespace
		hostname   string
		err        string
	}{
		{name: "pod pid without a shared pid ns is new", opts: &runtimeapi.NamespaceOption{Pid: pod},
			want: []specs.LinuxNamespace{mnt, net, uts, ipc, ns(specs.PIDNamespace, "")}},
		{name: "pod pid joins the pod's", opts: &runtimeapi.NamespaceOption{Pid: pod},
			join: []specs.LinuxNamespace{ns(specs.PIDNamespace, "/proc/42/ns/pid")},
			want: []specs.LinuxNamespace{mnt, net, uts, ipc, ns(specs.PIDNamespace, "/proc/42/ns/pid")}},
		{name: "container pid is new even if the pod shares one", opts: &runtimeapi.NamespaceOption{Pid: container},
			join: []specs.LinuxNamespace{ns(specs.PIDNamespace, "/proc/42/ns/pid")},
			want: []specs.LinuxNamespace{mnt, net, uts, ipc, ns(specs.PIDNamespace, "")}},
		{name: "host pid", opts: &runtimeapi.NamespaceOption{Pid: node},
			want: []specs.LinuxNamespace{mnt, net, uts, ipc}},
		{name: "target pid", opts: &runtimeapi.NamespaceOption{Pid: target, TargetId: "c0"}, target: "/proc/7/ns/pid",
			want: []specs.LinuxNamespace{mnt, net, uts, ipc, ns(specs.PIDNamespace, "/proc/7/ns/pid")}},
		{name: "target without its namespace", opts: &runtimeapi.NamespaceOption{Pid: target, TargetId: "c0"},
			err: "namespace_options.target_id"},
		{name: "host network takes uts along", opts: &runtimeapi.NamespaceOption{Network: node, Pid: container},
			want: []specs.LinuxNamespace{mnt, ipc, ns(specs.PIDNamespace, "")}},
		{name: "host ipc", opts: &runtimeapi.NamespaceOption{Ipc: node, Pid: container},
			want: []specs.LinuxNamespace{mnt, net, uts, ns(specs.PIDNamespace, "")}},
		{name: "cgroup v2 adds a cgroup namespace", opts: &runtimeapi.NamespaceOption{Pid: container}, cgroupV2: true,
			want: []specs.LinuxNamespace{mnt, net, uts, ipc, ns(specs.PIDNamespace, ""), ns(specs.CgroupNamespace, "")}},
		{name: "but not for privileged", opts: &runtimeapi.NamespaceOption{Pid: container}, cgroupV2: true, privileged: true,
			want: []specs.LinuxNamespace{mnt, net, uts, ipc, ns(specs.PIDNamespace, "")}},
		{name: "userns pod joins the pinned userns",
			opts: &runtimeapi.NamespaceOption{Pid: container, UsernsOptions: &runtimeapi.UserNamespace{Mode: pod, Uids: userMaps, Gids: userMaps}},
			join: []specs.LinuxNamespace{ns(specs.UserNamespace, "/run/ns/s1/user")},
			want: []specs.LinuxNamespace{mnt, net, uts, ipc, ns(specs.PIDNamespace, ""), ns(specs.UserNamespace, "/run/ns/s1/user")}},
		{name: "userns without mappings", opts: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: pod}},
			err: "needs uid and gid mappings"},
		{name: "userns container mode", opts: &runtimeapi.NamespaceOption{UsernsOptions: &runtimeapi.UserNamespace{Mode: container}},
			err: "userns_options.mode"},
		{name: "unknown pid mode", opts: &runtimeapi.NamespaceOption{Pid: 9}, err: "namespace_options.pid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Namespaces = append(in.Namespaces, tc.join...)
			in.TargetPIDNamespace = tc.target
			in.Host.CgroupV2 = tc.cgroupV2
			in.Config.Linux.SecurityContext.NamespaceOptions = tc.opts
			if tc.privileged {
				in.Config.Linux.SecurityContext.Privileged = true
				in.Sandbox.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}}
			}
			r, err := Build(in)
			wantErr(t, err, tc.err)
			if err != nil {
				return
			}
			if !reflect.DeepEqual(r.Spec.Linux.Namespaces, tc.want) {
				t.Fatalf("namespaces\n got %v\nwant %v", r.Spec.Linux.Namespaces, tc.want)
			}
			if r.Spec.Hostname != "" {
				t.Fatalf("hostname %q set in a joined or host UTS namespace", r.Spec.Hostname)
			}
		})
	}
}

func TestUserNamespaceMappings(t *testing.T) {
	in := baseInput(t)
	m := []*runtimeapi.IDMapping{{HostId: 100000, ContainerId: 0, Length: 65536}}
	in.Config.Linux.SecurityContext.NamespaceOptions = &runtimeapi.NamespaceOption{
		Network:       runtimeapi.NamespaceMode_NODE,
		UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: m, Gids: m},
	}
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.LinuxIDMapping{{HostID: 100000, ContainerID: 0, Size: 65536}}
	if !reflect.DeepEqual(r.Spec.Linux.UIDMappings, want) || !reflect.DeepEqual(r.Spec.Linux.GIDMappings, want) {
		t.Fatalf("mappings %v %v", r.Spec.Linux.UIDMappings, r.Spec.Linux.GIDMappings)
	}
	// Host network in a userns: sysfs cannot be mounted, /sys is bound.
	i := slices.IndexFunc(r.Spec.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys" })
	if got := r.Spec.Mounts[i]; got.Type != "bind" || got.Source != "/sys" || !slices.Contains(got.Options, "ro") {
		t.Fatalf("/sys mount %+v", got)
	}

	// The caller's mappings win over the config's.
	in.UIDMappings = []specs.LinuxIDMapping{{HostID: 1, ContainerID: 0, Size: 1}}
	r, err = Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.Spec.Linux.UIDMappings, in.UIDMappings) {
		t.Fatalf("uid mappings %v", r.Spec.Linux.UIDMappings)
	}
}

// A container that does get its own UTS namespace (the sandbox pinned
// none) must carry the pod's hostname itself.
func TestHostnameInOwnUTS(t *testing.T) {
	in := baseInput(t)
	in.Namespaces = in.Namespaces[:1]
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec.Hostname != "pod" {
		t.Fatalf("hostname %q, want pod", r.Spec.Hostname)
	}
}

// TestNamespacesFollowHostNetworkPod: a container that leaves its namespace
// options empty in a host-network, host-IPC pod shares the host's.
func TestNamespacesFollowHostNetworkPod(t *testing.T) {
	in := baseInput(t)
	in.Namespaces = nil
	in.Config.Linux.SecurityContext.NamespaceOptions = nil
	in.Sandbox.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE},
	}}
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range r.Spec.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace || n.Type == specs.UTSNamespace || n.Type == specs.IPCNamespace {
			t.Errorf("container of a host-network pod has its own %s namespace", n.Type)
		}
	}
}
