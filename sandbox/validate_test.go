package sandbox

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestValidate(t *testing.T) {
	base := func() *runtimeapi.PodSandboxConfig {
		return &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "p", Namespace: "ns", Uid: "u"}}
	}
	hostNet := &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
	hostIPCCtx := &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Ipc: runtimeapi.NamespaceMode_NODE}}
	cases := []struct {
		name string
		mut  func(*runtimeapi.PodSandboxConfig)
		want string // "" = valid
	}{
		{"valid", func(*runtimeapi.PodSandboxConfig) {}, ""},
		{"no name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "" }, "metadata.name"},
		{"no namespace", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "" }, "metadata.namespace"},
		{"slash in name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "../etc" }, "metadata.name"},
		{"NUL in namespace", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "a\x00b" }, "metadata.namespace"},
		{"newline in uid", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Uid = "u\nK8S_POD_NAME=x" }, "metadata.uid"},
		{"long name", func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = strings.Repeat("n", 254) }, "metadata.name"},
		{"huge annotations", func(c *runtimeapi.PodSandboxConfig) {
			c.Labels = map[string]string{"a": strings.Repeat("l", 300<<10)}
			c.Annotations = map[string]string{"b": strings.Repeat("a", 300<<10)}
		}, "config.labels and config.annotations"},
		{"annotations at the API server's limit", func(c *runtimeapi.PodSandboxConfig) {
			c.Annotations = map[string]string{"b": strings.Repeat("a", 256<<10)}
		}, ""},
		{"bad hostname", func(c *runtimeapi.PodSandboxConfig) { c.Hostname = "a b" }, "hostname"},
		{"net sysctl", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}
		}, ""},
		{"slash sysctl with dotted iface", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net/ipv4/conf/eth0.100/forwarding": "1"}}
		}, ""},
		{"ipc sysctls", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"kernel.shmmax": "1", "kernel.sem": "250 32000 32 128", "fs.mqueue.msg_max": "10"}}
		}, ""},
		{"not namespaced", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"vm.swappiness": "1"}}
		}, "not a namespaced sysctl"},
		{"dotdot escape", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net/../kernel/panic": "1"}}
		}, "not a sysctl name"},
		{"newline value", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.ipv4.ip_forward": "1\n0"}}
		}, "separator"},
		{"empty value", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.ipv4.ip_forward": ""}}
		}, "empty"},
		{"net sysctl on host network", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: hostNet, Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}
		}, "host-network"},
		{"ipc sysctl on host ipc", func(c *runtimeapi.PodSandboxConfig) {
			c.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: hostIPCCtx, Sysctls: map[string]string{"kernel.shmmax": "1"}}
		}, "host-IPC"},
		{"dns ok", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.0.0.10", "fd00::10"}, Searches: []string{"ns.svc.cluster.local", "example.com."}, Options: []string{"ndots:5", "edns0"}}
		}, ""},
		{"dns bad search", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Searches: []string{"a b"}}
		}, "searches[0]"},
		{"dns too many searches", func(c *runtimeapi.PodSandboxConfig) {
			c.DnsConfig = &runtimeapi.DNSConfig{Searches: strings.Fields(strings.Repeat("a.b ", 33))}
		}, "at most 32"},
		{"port out of range", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 70000}}
		}, "port_mappings[0]"},
		{"userns pod", func(c *runtimeapi.PodSandboxConfig) { c.Linux = usernsLinux(runtimeapi.NamespaceMode_POD, 0, 1) }, ""},
		{"userns node", func(c *runtimeapi.PodSandboxConfig) { c.Linux = usernsLinux(runtimeapi.NamespaceMode_NODE, 0, 0) }, ""},
		{"userns container mode", func(c *runtimeapi.PodSandboxConfig) { c.Linux = usernsLinux(runtimeapi.NamespaceMode_CONTAINER, 0, 1) }, "only POD and NODE"},
		{"userns id 0 unmapped", func(c *runtimeapi.PodSandboxConfig) { c.Linux = usernsLinux(runtimeapi.NamespaceMode_POD, 1, 1) }, "container ID 0"},
		{"userns two mappings", func(c *runtimeapi.PodSandboxConfig) { c.Linux = usernsLinux(runtimeapi.NamespaceMode_POD, 0, 2) }, "exactly one"},
		{"bad host ip", func(c *runtimeapi.PodSandboxConfig) {
			c.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 80, HostPort: 80, HostIp: "x"}}
		}, "host_ip"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.mut(c)
			err := Validate(c)
			if tc.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Validate() = %v, want InvalidArgument mentioning %q", err, tc.want)
			}
		})
	}
}

func TestSysctlPath(t *testing.T) {
	for key, want := range map[string]string{
		"net.ipv4.ip_forward":               "/proc/sys/net/ipv4/ip_forward",
		"net/ipv4/conf/eth0.100/forwarding": "/proc/sys/net/ipv4/conf/eth0.100/forwarding",
		"kernel.shm_rmid_forced":            "/proc/sys/kernel/shm_rmid_forced",
	} {
		if got := sysctlPath(key); got != want {
			t.Errorf("sysctlPath(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestBandwidth(t *testing.T) {
	if b := bandwidth(nil); b != nil {
		t.Errorf("no annotations: %+v", b)
	}
	b := bandwidth(map[string]string{"kubernetes.io/ingress-bandwidth": "10M", "kubernetes.io/egress-bandwidth": "bogus"})
	if b == nil || b.IngressRate != 10_000_000 || b.EgressRate != 0 {
		t.Errorf("bandwidth = %+v", b)
	}
}

func usernsLinux(mode runtimeapi.NamespaceMode, containerID uint32, n int) *runtimeapi.LinuxPodSandboxConfig {
	var maps []*runtimeapi.IDMapping
	for i := 0; i < n; i++ {
		maps = append(maps, &runtimeapi.IDMapping{ContainerId: containerID, HostId: 100000 + uint32(i)*65536, Length: 65536})
	}
	u := &runtimeapi.UserNamespace{Mode: mode, Uids: maps, Gids: maps}
	return &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{UsernsOptions: u}}}
}
