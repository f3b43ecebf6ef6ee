package spec

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DetectHostFacts fills HostFacts from this process and host. Only
// RROSupported is left to the caller: it is a property of the runtime
// handler (its `features`), not of the host alone.
func DetectHostFacts() (HostFacts, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return HostFacts{}, err
	}
	bnd, err := capField(string(status), "CapBnd")
	if err != nil {
		return HostFacts{}, err
	}
	eff, err := capField(string(status), "CapEff")
	if err != nil {
		return HostFacts{}, err
	}
	h := HostFacts{BoundingCaps: CapsFromMask(bnd), OOMScoreAdjMin: -1000}
	// Without CAP_SYS_RESOURCE the kernel refuses an oom_score_adj below
	// our own and a hard rlimit above ours.
	if !slices.Contains(CapsFromMask(eff), "CAP_SYS_RESOURCE") {
		b, err := os.ReadFile("/proc/self/oom_score_adj")
		if err != nil {
			return HostFacts{}, err
		}
		if h.OOMScoreAdjMin, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return HostFacts{}, fmt.Errorf("/proc/self/oom_score_adj: %w", err)
		}
		var rl unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return HostFacts{}, err
		}
		h.NofileMax = rl.Max
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return HostFacts{}, err
	}
	h.CgroupV2 = st.Type == unix.CGROUP2_SUPER_MAGIC
	if h.CgroupV2 {
		ctrl, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		h.HugetlbAvailable = slices.Contains(strings.Fields(string(ctrl)), "hugetlb")
		h.SwapAvailable = slices.Contains(strings.Fields(string(ctrl)), "memory")
	} else {
		h.HugetlbAvailable = exists("/sys/fs/cgroup/hugetlb")
		h.SwapAvailable = exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	}
	h.AppArmorEnabled = exists("/sys/kernel/security/apparmor")
	return h, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// capField parses a capability mask line ("CapBnd:\t000001fffeffffff")
// of /proc/<pid>/status.
func capField(status, name string) (uint64, error) {
	for _, l := range strings.Split(status, "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == name {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/self/status", name)
}

// CapsFromMask names the capabilities set in mask; unknown bits (a kernel
// newer than KnownCaps) are left out.
func CapsFromMask(mask uint64) []string {
	var out []string
	for i, c := range KnownCaps {
		if mask&(1<<i) != 0 {
			out = append(out, c)
		}
	}
	return out
}

// CapMask is the inverse of CapsFromMask, for comparing with /proc.
func CapMask(caps []string) uint64 {
	var m uint64
	for _, c := range caps {
		if i := slices.Index(KnownCaps, c); i >= 0 {
			m |= 1 << i
		}
	}
	return m
}
