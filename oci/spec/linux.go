package spec

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The annotations containerd sets, which hooks and tools key on.
const (
	AnnotationContainerType    = "io.kubernetes.cri.container-type"
	AnnotationSandboxID        = "io.kubernetes.cri.sandbox-id"
	AnnotationSandboxNamespace = "io.kubernetes.cri.sandbox-namespace"
	AnnotationSandboxUID       = "io.kubernetes.cri.sandbox-uid"
	AnnotationSandboxName      = "io.kubernetes.cri.sandbox-name"
	AnnotationContainerName    = "io.kubernetes.cri.container-name"
	AnnotationImageName        = "io.kubernetes.cri.image-name"
)

// linuxOpts are namespaces, mounts, devices, resources, sysctls and
// annotations.
func linuxOpts(in Input) ([]SpecOpt, error) {
	sc := in.Config.GetLinux().GetSecurityContext()
	ns, err := planNamespaces(in)
	if err != nil {
		return nil, err
	}
	binds, rootProp, err := BindMounts(in)
	if err != nil {
		return nil, err
	}
	fsys := in.DevFS
	if fsys == nil {
		fsys = hostFS()
	}
	devs, rules, err := Devices(fsys, in.Config.GetDevices())
	if err != nil {
		return nil, err
	}
	sysctls := in.Sandbox.GetLinux().GetSysctls()
	if err := ValidateSysctls(sysctls, ns.hostNet, ns.hostIPC); err != nil {
		return nil, err
	}
	res, err := Resources(in.Config.GetLinux().GetResources(), in.Host)
	if err != nil {
		return nil, err
	}
	opts := []SpecOpt{WithNamespaces(ns.list), WithMounts(binds), WithRootfsPropagation(rootProp)}
	if ns.userns {
		opts = append(opts, WithIDMappings(ns.uidMap, ns.gidMap))
		if ns.hostNet {
			opts = append(opts, WithHostSysfs(in.Host.RROSupported))
		}
	}
	if ns.ownUTS {
		opts = append(opts, WithHostname(cmp.Or(in.Hostname, in.Sandbox.GetHostname())))
	}
	if sc.GetPrivileged() {
		host, err := HostDevices(fsys)
		if err != nil {
			return nil, fmt.Errorf("privileged: listing host devices: %w", err)
		}
		opts = append(opts, WithDevices(host, nil), WithAllDevicesAllowed)
	}
	return append(opts,
		WithDevices(devs, rules),
		WithResources(res),
		WithCgroupsPath(in.CgroupsPath),
		WithSysctls(sysctls),
		WithAnnotations(annotations(in)),
	), nil
}

// Resources maps the CRI resources to OCI ones, the way containerd does:
// zero means unset; a memory limit without a swap limit also caps swap
// (no swapping by default) where swap can be limited; hugepage limits
// are dropped without the hugetlb controller, since kubelet sends them on
// every container. unified is refused on cgroup v1, where runc would fail
// the start with a vaguer message.
func Resources(r *runtimeapi.LinuxContainerResources, host HostFacts) (*specs.LinuxResources, error) {
	out := &specs.LinuxResources{}
	if r == nil {
		return out, nil
	}
	cpu := &specs.LinuxCPU{Cpus: r.GetCpusetCpus(), Mems: r.GetCpusetMems()}
	if p := r.GetCpuPeriod(); p != 0 {
		v := uint64(p)
		cpu.Period = &v
	}
	if q := r.GetCpuQuota(); q != 0 {
		cpu.Quota = &q
	}
	if s := r.GetCpuShares(); s != 0 {
		v := uint64(s)
		cpu.Shares = &v
	}
	if (*cpu != specs.LinuxCPU{}) {
		out.CPU = cpu
	}
	mem := &specs.LinuxMemory{}
	if l := r.GetMemoryLimitInBytes(); l != 0 {
		mem.Limit = &l
		if host.SwapAvailable {
			mem.Swap = &l
		}
	}
	if s := r.GetMemorySwapLimitInBytes(); s != 0 && host.SwapAvailable {
		mem.Swap = &s
	}
	if mem.Limit != nil || mem.Swap != nil {
		out.Memory = mem
	}
	if host.HugetlbAvailable {
		for _, h := range r.GetHugepageLimits() {
			out.HugepageLimits = append(out.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
		}
	}
	if u := r.GetUnified(); len(u) > 0 {
		if !host.CgroupV2 {
			return nil, invalid("linux.resources.unified", "needs cgroup v2; this host runs v1")
		}
		out.Unified = maps.Clone(u)
	}
	return out, nil
}

// WithResources sets the cgroup limits, keeping the device rules.
func WithResources(r *specs.LinuxResources) SpecOpt {
	return func(s *specs.Spec) error {
		devices := s.Linux.Resources.Devices
		s.Linux.Resources = r
		s.Linux.Resources.Devices = devices
		return nil
	}
}

// WithCgroupsPath sets the cgroup, as the caller computed it for its driver.
func WithCgroupsPath(p string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Linux.CgroupsPath = p
		return nil
	}
}

// ValidateSysctls accepts only sysctls of namespaces the container does
// not share with the host (runc's rule; the others would change the node):
// IPC ones (kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*) without host
// IPC, net.* without host network. Keys may use "/" for a "." inside a
// component (net.ipv4.conf.eth0/1.forwarding), as kubelet sends them.
// Separators and control characters, which would let one entry smuggle
// another into whatever serialises them, are refused, and so are empty
// values, which the kernel would silently ignore.
func ValidateSysctls(sysctls map[string]string, hostNet, hostIPC bool) error {
	for _, k := range slices.Sorted(maps.Keys(sysctls)) {
		field := fmt.Sprintf("linux.sysctls[%q]", k)
		v := sysctls[k]
		if k == "" || strings.ContainsAny(k, "=; \t\n\r\x00") || strings.Contains(k, "..") ||
			strings.HasPrefix(k, ".") || strings.HasSuffix(k, ".") || strings.HasPrefix(k, "/") {
			return invalid(field, "malformed name")
		}
		if strings.TrimSpace(v) == "" || strings.ContainsAny(v, "=;\n\r\x00") {
			return invalid(field, "value %q is empty or contains a separator", v)
		}
		switch ipc, net := ipcSysctl(k), strings.HasPrefix(k, "net."); {
		case ipc && hostIPC:
			return invalid(field, "not allowed with the host's IPC namespace")
		case net && hostNet:
			return invalid(field, "not allowed with the host's network namespace")
		case !ipc && !net:
			return invalid(field, "not a namespaced sysctl")
		}
	}
	return nil
}

func ipcSysctl(k string) bool {
	return k == "kernel.sem" || strings.HasPrefix(k, "kernel.shm") ||
		strings.HasPrefix(k, "kernel.msg") || strings.HasPrefix(k, "fs.mqueue.")
}

// WithSysctls sets sysctls; runc writes them into the container's (here:
// the pod's shared) namespaces at each start, which is idempotent.
func WithSysctls(sysctls map[string]string) SpecOpt {
	return func(s *specs.Spec) error {
		if len(sysctls) > 0 {
			s.Linux.Sysctl = maps.Clone(sysctls)
		}
		return nil
	}
}

// annotations are the config's annotations, overridden by the CRI ones
// containerd sets so that a pod cannot forge them.
func annotations(in Input) map[string]string {
	a := maps.Clone(in.Config.GetAnnotations())
	if a == nil {
		a = map[string]string{}
	}
	md := in.Sandbox.GetMetadata()
	image := cmp.Or(in.ImageName, in.Config.GetImage().GetUserSpecifiedImage(), in.Config.GetImage().GetImage())
	maps.Copy(a, map[string]string{
		AnnotationContainerType:    "container",
		AnnotationSandboxID:        in.SandboxID,
		AnnotationSandboxNamespace: md.GetNamespace(),
		AnnotationSandboxUID:       md.GetUid(),
		AnnotationSandboxName:      md.GetName(),
		AnnotationContainerName:    in.Config.GetMetadata().GetName(),
		AnnotationImageName:        image,
	})
	return a
}

// WithAnnotations sets the spec annotations.
func WithAnnotations(a map[string]string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Annotations = a
		return nil
	}
}
