package spec

import (
	"encoding/json"
	"errors"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// kubeletInput is what kubelet sends for a restricted-profile pod with a
// volume, a device and limits, plus what the daemon adds.
func kubeletInput(t testing.TB) Input {
	in := baseInput(t)
	vol := t.TempDir()
	term := filepath.Join(t.TempDir(), "termination-log")
	if err := os.WriteFile(term, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	in.Config.Command = []string{"/bin/sh", "-c"}
	in.Config.Args = []string{"sleep 1000"}
	in.Config.WorkingDir = "/tmp"
	in.Config.Envs = []*runtimeapi.KeyValue{{Key: "KUBERNETES_SERVICE_HOST", Value: []byte("10.0.0.1")}}
	in.Config.Mounts = []*runtimeapi.Mount{
		{ContainerPath: "/data", HostPath: vol},
		{ContainerPath: "/dev/termination-log", HostPath: term},
	}
	in.Config.Devices = []*runtimeapi.Device{{HostPath: "/dev/fuse", ContainerPath: "/dev/fuse", Permissions: "rw"}}
	in.Config.Linux.Resources = &runtimeapi.LinuxContainerResources{
		CpuPeriod: 100000, CpuQuota: 20000, CpuShares: 204, MemoryLimitInBytes: 64 << 20, OomScoreAdj: 1000,
		HugepageLimits: []*runtimeapi.HugepageLimit{{PageSize: "2MB"}},
	}
	sc := in.Config.Linux.SecurityContext
	sc.RunAsUser = &runtimeapi.Int64Value{Value: 1000}
	sc.RunAsGroup = &runtimeapi.Int64Value{Value: 3000}
	sc.SupplementalGroups = []int64{2000}
	sc.NoNewPrivs = true
	sc.ReadonlyRootfs = true
	sc.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}, AddCapabilities: []string{"NET_BIND_SERVICE"}}
	sc.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	sc.MaskedPaths = DefaultMaskedPaths()
	sc.ReadonlyPaths = DefaultReadonlyPaths()
	sc.NamespaceOptions = &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER}
	in.Sandbox.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}}
	return in
}

func TestBuildKubeletPod(t *testing.T) {
	r, err := Build(kubeletInput(t))
	if err != nil {
		t.Fatal(err)
	}
	s := r.Spec
	validateSpec(t, s)
	if want := (UserInfo{UID: 1000, GID: 3000, AdditionalGIDs: []uint32{10, 29, 2000, 3000}, Home: "/home/app"}); !reflect.DeepEqual(r.User, want) {
		t.Errorf("user %+v, want %+v", r.User, want)
	}
	if !slices.Equal(s.Process.Args, []string{"/bin/sh", "-c", "sleep 1000"}) || s.Process.Cwd != "/tmp" {
		t.Errorf("args %q cwd %q", s.Process.Args, s.Process.Cwd)
	}
	if !slices.Equal(s.Process.Capabilities.Bounding, []string{"CAP_NET_BIND_SERVICE"}) {
		t.Errorf("caps %v", s.Process.Capabilities.Bounding)
	}
	if !s.Process.NoNewPrivileges || !s.Root.Readonly || s.Linux.Seccomp == nil || *s.Process.OOMScoreAdj != 1000 {
		t.Errorf("nnp %v ro %v seccomp %v oom %d", s.Process.NoNewPrivileges, s.Root.Readonly, s.Linux.Seccomp != nil, *s.Process.OOMScoreAdj)
	}
	if s.Linux.Resources.Memory == nil || *s.Linux.Resources.Memory.Limit != 64<<20 || *s.Linux.Resources.CPU.Quota != 20000 {
		t.Errorf("resources %+v", s.Linux.Resources)
	}
	if s.Linux.CgroupsPath != "/kubepods/pod1/c1" || s.Root.Path == "" {
		t.Errorf("cgroups path %q root %q", s.Linux.CgroupsPath, s.Root.Path)
	}
}

// The spec survives a JSON round trip unchanged (runc reads config.json).
func TestBuildJSONRoundTrip(t *testing.T) {
	for name, in := range map[string]Input{"plain": baseInput(t), "kubelet": kubeletInput(t)} {
		r, err := Build(in)
		if err != nil {
			t.Fatal(name, err)
		}
		b, err := json.Marshal(r.Spec)
		if err != nil {
			t.Fatal(name, err)
		}
		var back specs.Spec
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(name, err)
		}
		b2, _ := json.Marshal(&back)
		if string(b) != string(b2) {
			t.Fatalf("%s: round trip changed the spec", name)
		}
		validateSpec(t, &back)
	}
}

// Build must not change its input: kubelet's request is reused on retry.
func TestBuildDoesNotMutateInput(t *testing.T) {
	in := kubeletInput(t)
	in.Image.Env = []string{"A=1"}
	before, _ := json.Marshal(in.Config)
	env := slices.Clone(in.Image.Env)
	if _, err := Build(in); err != nil {
		t.Fatal(err)
	}
	after, _ := json.Marshal(in.Config)
	if string(before) != string(after) || !slices.Equal(env, in.Image.Env) {
		t.Fatal("Build mutated its input")
	}
}

func TestBuildBadInput(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Input)
		err    string
		is     func(error) bool
	}{
		{"no config", func(in *Input) { in.Config = nil }, "config: missing", errdefs.IsInvalidArgument},
		{"no rootfs", func(in *Input) { in.RootfsPath = "" }, "rootfs", errdefs.IsInvalidArgument},
		{"CDI", func(in *Input) { in.Config.CDIDevices = []*runtimeapi.CDIDevice{{Name: "vendor.com/gpu=0"}} }, "CDI_devices", errdefs.IsNotImplemented},
		{"nil sandbox is fine", func(in *Input) { in.Sandbox = nil }, "", nil},
		{"nil linux config is fine", func(in *Input) { in.Config.Linux = nil }, "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			tc.change(&in)
			r, err := Build(in)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				validateSpec(t, r.Spec)
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || !tc.is(err) {
				t.Fatalf("error %v, want %q of the right class", err, tc.err)
			}
		})
	}
}

// validateSpec checks what runc needs of a spec before it even starts.
func validateSpec(t testing.TB, s *specs.Spec) {
	t.Helper()
	fail := func(format string, args ...any) { t.Helper(); t.Fatalf("invalid spec: "+format, args...) }
	if s.Version == "" || s.Root == nil || !path.IsAbs(s.Root.Path) || s.Process == nil || s.Linux == nil {
		fail("missing version, absolute root, process or linux")
	}
	p := s.Process
	if len(p.Args) == 0 || !path.IsAbs(p.Cwd) || p.Capabilities == nil || len(p.Rlimits) == 0 || p.OOMScoreAdj == nil {
		fail("process %+v", p)
	}
	for _, e := range p.Env {
		if k, _, ok := strings.Cut(e, "="); !ok || k == "" {
			fail("env entry %q", e)
		}
	}
	for _, set := range [][]string{p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted, p.Capabilities.Ambient} {
		for _, c := range set {
			if !slices.Contains(KnownCaps, c) {
				fail("capability %q", c)
			}
		}
	}
	for i, m := range s.Mounts {
		if !path.IsAbs(m.Destination) || path.Clean(m.Destination) != m.Destination || m.Type == "" || m.Source == "" {
			fail("mount %+v", m)
		}
		for _, later := range s.Mounts[i+1:] {
			if strings.HasPrefix(m.Destination, later.Destination+"/") {
				fail("%s mounted before its parent %s", m.Destination, later.Destination)
			}
		}
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, n := range s.Linux.Namespaces {
		if seen[n.Type] {
			fail("namespace %s twice", n.Type)
		}
		seen[n.Type] = true
	}
	if !seen[specs.MountNamespace] || (s.Hostname != "" && !seen[specs.UTSNamespace]) {
		fail("namespaces %v with hostname %q", s.Linux.Namespaces, s.Hostname)
	}
	if seen[specs.UserNamespace] != (len(s.Linux.UIDMappings) > 0) {
		fail("user namespace without mappings or the reverse")
	}
	if r := s.Linux.Resources.Devices; len(r) == 0 || r[0].Type != "" || r[0].Access != "rwm" {
		fail("device rules do not start with a rule on all devices: %+v", r)
	}
	for _, d := range s.Linux.Devices {
		if !path.IsAbs(d.Path) || (d.Type != "c" && d.Type != "b") {
			fail("device %+v", d)
		}
	}
}

// FuzzBuild throws user strings, sysctls, mount fields, devices and
// capabilities at Build: it may refuse them, never panic, and what it
// accepts must be a valid spec.
func FuzzBuild(f *testing.F) {
	f.Add("app:video", "net.core.somaxconn", "1024", "/data", "/tmp", "NET_ADMIN", "noexec", "/dev/fuse", uint8(0))
	f.Add("1000:50", "kernel.shm_rmid_forced", "1\n", "data", "/nope", "ALL", "mode=1", "/dev/dri", uint8(1))
	f.Add("", "net..x", "a;b", "/", "", "cap_chown", "rnoexec", "/etc/hostname", uint8(2))
	f.Add("ghost:ghosts", "", "", "/a/../b", "/tmp/../etc", "", "", "", uint8(3))
	dir := f.TempDir()
	root := fakeRootfs(f, nil)
	f.Fuzz(func(t *testing.T, user, key, value, dst, src, capName, opt, dev string, prop uint8) {
		in := baseInputAt(root)
		in.Image.User = user
		in.Sandbox.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{key: value}}
		if src == "" {
			src = dir
		}
		in.Config.Mounts = []*runtimeapi.Mount{{ContainerPath: dst, HostPath: src, MountOptions: []string{opt},
			Propagation: runtimeapi.MountPropagation(prop % 4), RecursiveReadOnly: prop&4 != 0, Readonly: prop&8 != 0}}
		in.Config.Devices = []*runtimeapi.Device{{HostPath: dev, ContainerPath: dev}}
		in.Config.Linux.SecurityContext.Capabilities = &runtimeapi.Capability{AddCapabilities: []string{capName}}
		in.SourcePropagation = func(string) (bool, bool, error) { return prop&16 != 0, prop&32 != 0, nil }
		r, err := Build(in)
		if err != nil {
			var anyClass bool
			for _, is := range []func(error) bool{errdefs.IsInvalidArgument, errdefs.IsFailedPrecondition} {
				anyClass = anyClass || is(err)
			}
			if !anyClass && !errors.Is(err, errdefs.ErrNotImplemented) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		validateSpec(t, r.Spec)
	})
}
