package sandbox

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/reqlimits"
)

// Validate checks a RunPodSandbox config before anything is created. Errors
// are InvalidArgument naming the field.
func Validate(c *runtimeapi.PodSandboxConfig) error {
	md := c.GetMetadata()
	if md == nil {
		return invalid("config.metadata: required")
	}
	for _, f := range [][2]string{
		{"config.metadata.name", md.Name}, {"config.metadata.namespace", md.Namespace}, {"config.metadata.uid", md.Uid},
	} {
		if err := reqlimits.Name(f[0], f[1]); err != nil {
			return err
		}
	}
	if err := reqlimits.Metadata("config", c.GetLabels(), c.GetAnnotations()); err != nil {
		return err
	}
	if h := c.GetHostname(); h != "" && !hostnameRE.MatchString(h) {
		return invalid("config.hostname %q: not a valid hostname", h)
	}
	if err := validateSysctls(c); err != nil {
		return err
	}
	if err := validateUserns(nsOptions(c).GetUsernsOptions()); err != nil {
		return err
	}
	if err := validateDNS(c.GetDnsConfig()); err != nil {
		return err
	}
	for i, pm := range c.GetPortMappings() {
		if pm.ContainerPort <= 0 || pm.ContainerPort > 65535 || pm.HostPort < 0 || pm.HostPort > 65535 {
			return invalid("config.port_mappings[%d]: ports out of range (container %d, host %d)", i, pm.ContainerPort, pm.HostPort)
		}
		if pm.HostIp != "" {
			if _, err := netip.ParseAddr(pm.HostIp); err != nil {
				return invalid("config.port_mappings[%d].host_ip %q: not an IP", i, pm.HostIp)
			}
		}
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

var (
	// RFC 1123 hostname, at most 64 bytes (the UTS limit).
	hostnameRE = regexp.MustCompile(`^[a-zA-Z0-9]([-a-zA-Z0-9.]{0,62}[a-zA-Z0-9])?$`)
	// A sysctl key: path segments of [a-zA-Z0-9_-] (and '.' inside a segment
	// only when '/' is the separator, e.g. net/ipv4/conf/eth0.100/forwarding).
	sysctlDotRE   = regexp.MustCompile(`^[a-zA-Z0-9_-]+(\.[a-zA-Z0-9_-]+)+$`)
	sysctlSlashRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+(/[a-zA-Z0-9_.-]+)+$`)
)

// namespacedSysctl reports which namespace a sysctl belongs to ("net" or
// "ipc"), or "" when it is not namespaced and so cannot be set per pod.
func namespacedSysctl(key string) string {
	k := strings.ReplaceAll(key, "/", ".")
	switch {
	case strings.HasPrefix(k, "net."):
		return "net"
	case strings.HasPrefix(k, "fs.mqueue."), k == "kernel.sem",
		strings.HasPrefix(k, "kernel.shm"), strings.HasPrefix(k, "kernel.msg"):
		return "ipc"
	}
	return ""
}

func validateSysctls(c *runtimeapi.PodSandboxConfig) error {
	for key, value := range c.GetLinux().GetSysctls() {
		if (!sysctlDotRE.MatchString(key) && !sysctlSlashRE.MatchString(key)) || hasDotSegment(key) {
			return invalid("config.linux.sysctls[%q]: not a sysctl name", key)
		}
		// The value is written to a /proc/sys file: no separator may smuggle
		// a second write.
		if value == "" || strings.ContainsAny(value, "\n\r\x00;=") || len(value) > 4096 {
			return invalid("config.linux.sysctls[%q]: value %q is empty or contains a separator", key, value)
		}
		switch namespacedSysctl(key) {
		case "net":
			if hostNetwork(c) {
				return invalid("config.linux.sysctls[%q]: a host-network pod cannot set network sysctls", key)
			}
		case "ipc":
			if hostIPC(c) {
				return invalid("config.linux.sysctls[%q]: a host-IPC pod cannot set IPC sysctls", key)
			}
		default:
			return invalid("config.linux.sysctls[%q]: not a namespaced sysctl", key)
		}
	}
	return nil
}

// hasDotSegment catches "." and ".." path segments, which would walk out of
// /proc/sys/net into non-namespaced sysctls.
func hasDotSegment(key string) bool {
	for _, seg := range strings.Split(key, "/") {
		if strings.Trim(seg, ".") == "" {
			return true
		}
	}
	return false
}

// sysctlPath maps a sysctl key to its /proc/sys file.
func sysctlPath(key string) string {
	if strings.Contains(key, "/") {
		return "/proc/sys/" + key
	}
	return "/proc/sys/" + strings.ReplaceAll(key, ".", "/")
}

var (
	dnsNameRE   = regexp.MustCompile(`^[a-zA-Z0-9_]([-a-zA-Z0-9_]{0,61}[a-zA-Z0-9_])?(\.[a-zA-Z0-9_]([-a-zA-Z0-9_]{0,61}[a-zA-Z0-9_])?)*\.?$`)
	dnsOptionRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+(:[0-9]+)?$`)
)

// validateDNS refuses anything that could break the generated resolv.conf.
func validateDNS(d *runtimeapi.DNSConfig) error {
	if d == nil {
		return nil
	}
	for i, s := range d.Servers {
		if _, err := netip.ParseAddr(s); err != nil {
			return invalid("config.dns_config.servers[%d] %q: not an IP address", i, s)
		}
	}
	if len(d.Searches) > 32 {
		return invalid("config.dns_config.searches: %d domains, at most 32", len(d.Searches))
	}
	for i, s := range d.Searches {
		if len(s) > 253 || !dnsNameRE.MatchString(s) {
			return invalid("config.dns_config.searches[%d] %q: not a domain name", i, s)
		}
	}
	for i, o := range d.Options {
		if !dnsOptionRE.MatchString(o) {
			return invalid("config.dns_config.options[%d] %q: not a resolver option", i, o)
		}
	}
	return nil
}

// validateUserns accepts the host user namespace, or a pod one with exactly
// one uid and one gid range that maps container ID 0, as kubelet sends.
func validateUserns(u *runtimeapi.UserNamespace) error {
	if u == nil || u.Mode == runtimeapi.NamespaceMode_NODE {
		return nil
	}
	const field = "config.linux.security_context.namespace_options.userns_options"
	if u.Mode != runtimeapi.NamespaceMode_POD {
		return invalid("%s.mode %v: only POD and NODE are supported", field, u.Mode)
	}
	for name, maps := range map[string][]*runtimeapi.IDMapping{"uids": u.Uids, "gids": u.Gids} {
		if len(maps) != 1 {
			return invalid("%s.%s: want exactly one mapping, got %d", field, name, len(maps))
		}
		m := maps[0]
		if m.ContainerId != 0 {
			return invalid("%s.%s[0].container_id %d: container ID 0 must be mapped", field, name, m.ContainerId)
		}
		if m.Length == 0 || uint64(m.HostId)+uint64(m.Length) > 1<<32-1 {
			return invalid("%s.%s[0]: host range %d+%d is empty or out of range", field, name, m.HostId, m.Length)
		}
		if m.HostId == 0 {
			return invalid("%s.%s[0].host_id: mapping to host root defeats the user namespace", field, name)
		}
	}
	return nil
}
