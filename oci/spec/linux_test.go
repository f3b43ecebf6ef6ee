package spec

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestValidateSysctls(t *testing.T) {
	for _, tc := range []struct {
		name             string
		sysctls          map[string]string
		hostNet, hostIPC bool
		err              string
	}{
		{name: "kubernetes safe set", sysctls: map[string]string{
			"kernel.shm_rmid_forced":              "1",
			"net.ipv4.ip_local_port_range":        "1024 65535",
			"net.ipv4.tcp_syncookies":             "1",
			"net.ipv4.ping_group_range":           "0 2147483647",
			"net.ipv4.ip_unprivileged_port_start": "0",
			"kernel.msgmax":                       "65536",
			"kernel.sem":                          "250\t32000\t32\t128",
			"fs.mqueue.msg_max":                   "10",
		}},
		{name: "slash inside a component", sysctls: map[string]string{"net.ipv4.conf.eth0/1.forwarding": "1"}},
		{name: "not namespaced", sysctls: map[string]string{"kernel.panic": "1"}, err: `linux.sysctls["kernel.panic"]: not a namespaced sysctl`},
		{name: "vm", sysctls: map[string]string{"vm.swappiness": "1"}, err: "not a namespaced sysctl"},
		{name: "hostname belongs to the hostname field", sysctls: map[string]string{"kernel.hostname": "x"}, err: "not a namespaced"},
		{name: "net with host network", sysctls: map[string]string{"net.ipv4.tcp_syncookies": "1"}, hostNet: true,
			err: "host's network namespace"},
		{name: "ipc with host ipc", sysctls: map[string]string{"kernel.shmmax": "1"}, hostIPC: true, err: "host's IPC namespace"},
		{name: "net fine with host ipc", sysctls: map[string]string{"net.core.somaxconn": "1024"}, hostIPC: true},
		{name: "newline in value", sysctls: map[string]string{"net.core.somaxconn": "1\nkernel.panic=1"}, err: "contains a separator"},
		{name: "semicolon in value", sysctls: map[string]string{"net.core.somaxconn": "1;kernel.panic=1"}, err: "separator"},
		{name: "equals in value", sysctls: map[string]string{"net.core.somaxconn": "a=b"}, err: "separator"},
		{name: "empty value", sysctls: map[string]string{"net.core.somaxconn": ""}, err: "empty"},
		{name: "blank value", sysctls: map[string]string{"net.core.somaxconn": " "}, err: "empty"},
		{name: "equals in key", sysctls: map[string]string{"net.a=b": "1"}, err: "malformed name"},
		{name: "dot-dot in key", sysctls: map[string]string{"net..x": "1"}, err: "malformed name"},
		{name: "path traversal in key", sysctls: map[string]string{"net/../../kernel/panic": "1"}, err: "malformed name"},
		{name: "leading slash", sysctls: map[string]string{"/net.x": "1"}, err: "malformed name"},
		{name: "empty key", sysctls: map[string]string{"": "1"}, err: "malformed name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, ValidateSysctls(tc.sysctls, tc.hostNet, tc.hostIPC), tc.err)
		})
	}
}

func TestSysctlsInSpec(t *testing.T) {
	in := baseInput(t)
	in.Sandbox.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.core.somaxconn": "1024"}}
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Spec.Linux.Sysctl["net.core.somaxconn"] != "1024" {
		t.Fatalf("sysctls %v", r.Spec.Linux.Sysctl)
	}
	in.Config.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
	_, err = Build(in)
	wantErr(t, err, "host's network namespace")
}

func TestResources(t *testing.T) {
	i64 := func(v int64) *int64 { return &v }
	u64 := func(v uint64) *uint64 { return &v }
	full := HostFacts{HugetlbAvailable: true, SwapAvailable: true, CgroupV2: true}
	huge := []*runtimeapi.HugepageLimit{{PageSize: "2MB", Limit: 4 << 20}}
	for _, tc := range []struct {
		name string
		r    *runtimeapi.LinuxContainerResources
		host HostFacts
		want *specs.LinuxResources
		err  string
	}{
		{name: "none", want: &specs.LinuxResources{}},
		{name: "zeroes are unset", r: &runtimeapi.LinuxContainerResources{}, host: full, want: &specs.LinuxResources{}},
		{name: "cpu", host: full, r: &runtimeapi.LinuxContainerResources{CpuPeriod: 100000, CpuQuota: 50000, CpuShares: 512, CpusetCpus: "0-1", CpusetMems: "0"},
			want: &specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(100000), Quota: i64(50000), Shares: u64(512), Cpus: "0-1", Mems: "0"}}},
		{name: "memory caps swap too", host: full, r: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 30},
			want: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30), Swap: i64(1 << 30)}}},
		{name: "explicit swap", host: full, r: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 30, MemorySwapLimitInBytes: 2 << 30},
			want: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30), Swap: i64(2 << 30)}}},
		{name: "no swap accounting", r: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 1 << 30, MemorySwapLimitInBytes: 2 << 30},
			want: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 30)}}},
		{name: "hugepages", host: full, r: &runtimeapi.LinuxContainerResources{HugepageLimits: huge},
			want: &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}}}},
		{name: "hugepages dropped without hugetlb", r: &runtimeapi.LinuxContainerResources{HugepageLimits: huge},
			want: &specs.LinuxResources{}},
		{name: "unified on v2", host: full, r: &runtimeapi.LinuxContainerResources{Unified: map[string]string{"memory.high": "1G"}},
			want: &specs.LinuxResources{Unified: map[string]string{"memory.high": "1G"}}},
		{name: "unified on v1", r: &runtimeapi.LinuxContainerResources{Unified: map[string]string{"memory.high": "1G"}},
			err: "linux.resources.unified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resources(tc.r, tc.host)
			wantErr(t, err, tc.err)
			if err == nil && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestAnnotations(t *testing.T) {
	in := baseInput(t)
	in.Config.Annotations = map[string]string{"team": "a", AnnotationSandboxID: "forged"}
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"team":                     "a",
		AnnotationContainerType:    "container",
		AnnotationSandboxID:        "s1",
		AnnotationSandboxNamespace: "default",
		AnnotationSandboxUID:       "u1",
		AnnotationSandboxName:      "pod",
		AnnotationContainerName:    "app",
		AnnotationImageName:        "busybox:1.36",
	}
	if !reflect.DeepEqual(r.Spec.Annotations, want) {
		t.Fatalf("annotations %v\nwant %v", r.Spec.Annotations, want)
	}
	if in.Config.Annotations[AnnotationSandboxID] != "forged" {
		t.Fatal("Build changed the request's annotations")
	}
}
