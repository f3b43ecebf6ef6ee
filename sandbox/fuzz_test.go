package sandbox

import (
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// FuzzValidate: Validate never panics, and what it accepts can never smuggle
// a second write into /proc/sys or a second line into resolv.conf.
func FuzzValidate(f *testing.F) {
	f.Add("pod", "ns", "uid", "host", "net.ipv4.ip_forward", "1", "10.0.0.1", "svc.cluster.local", "ndots:5")
	f.Add("p", "n", "u", "", "net/../kernel/panic", "1", "::1", "a..b", "x y")
	f.Add("p/x", "n", "u", "h", "kernel.shm_rmid_forced", "1\n2", "1.2.3.4\n", "a\nb", "opt\nnameserver 6.6.6.6")
	f.Fuzz(func(t *testing.T, name, ns, uid, host, key, value, server, search, option string) {
		c := &runtimeapi.PodSandboxConfig{
			Metadata:  &runtimeapi.PodSandboxMetadata{Name: name, Namespace: ns, Uid: uid},
			Hostname:  host,
			Linux:     &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{key: value}},
			DnsConfig: &runtimeapi.DNSConfig{Servers: []string{server}, Searches: []string{search}, Options: []string{option}},
		}
		if err := Validate(c); err != nil {
			return
		}
		if strings.ContainsAny(value, "\n\r\x00;=") || strings.Contains(key, "..") {
			t.Errorf("accepted sysctl %q=%q", key, value)
		}
		if !strings.HasPrefix(sysctlPath(key), "/proc/sys/") || strings.Contains(sysctlPath(key), "/../") {
			t.Errorf("accepted sysctl %q maps to %q", key, sysctlPath(key))
		}
		for _, s := range []string{server, search, option, host} {
			if strings.ContainsAny(s, "\n\r\x00 ") {
				t.Errorf("accepted a resolv.conf/hostname field with a separator: %q", s)
			}
		}
	})
}
