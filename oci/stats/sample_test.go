package stats

import (
	"math"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

func TestMain(m *testing.M) {
	// Fixture files under testdata are not on cgroupfs; the library refuses
	// them unless told this is a test. Real cgroups are read either way.
	cgroups.TestMode = true
	os.Exit(m.Run())
}

func TestExpandPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "/kubepods/pod1/abc", want: "/kubepods/pod1/abc"},
		{in: "kubepods/pod1/abc", want: "/kubepods/pod1/abc"},
		{in: "/kubepods/../../abc", want: "/abc"},
		{in: "kubepods-besteffort-pod1.slice:nodeagent:abc",
			want: "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/nodeagent-abc.scope"},
		{in: "system.slice:docker:abc", want: "/system.slice/docker-abc.scope"},
		{in: ":nodeagent:abc", want: "/system.slice/nodeagent-abc.scope"},
		{in: "-.slice:p:abc", want: "/p-abc.scope"},
		{in: "kubepods.slice:p:kubepods-burstable.slice", want: "/kubepods.slice/kubepods-burstable.slice"},
		// A pod's cgroup parent under the systemd driver.
		{in: "kubepods-burstable-pod2.slice", want: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2.slice"},
		{in: "", bad: true},
		{in: "a:b", bad: true},
		{in: "a.slice:b:c:d", bad: true},
		{in: "kubepods:p:abc", bad: true},
		{in: "a--b.slice:p:abc", bad: true},
		{in: "-a.slice:p:abc", bad: true},
		{in: ".slice:p:abc", bad: true},
		{in: "a.slice:p:", bad: true},
		{in: "a.slice:p:x/y", bad: true},
	} {
		got, err := ExpandPath(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("ExpandPath(%q) = %q, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ExpandPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestFromStats(t *testing.T) {
	const mib = 1 << 20
	v1Unlimited := uint64(9223372036854771712) // what v1 prints for no limit
	for _, tc := range []struct {
		name string
		keys memKeys
		mem  cgroups.MemoryStats
		want Sample // memory and swap fields only
	}{{
		name: "v1 limited with swap",
		keys: v1Keys,
		mem: cgroups.MemoryStats{
			Usage:     cgroups.MemoryData{Usage: 100 * mib, Limit: 256 * mib, MaxUsage: 120 * mib, Failcnt: 3},
			SwapUsage: cgroups.MemoryData{Usage: 110 * mib, Limit: 512 * mib},
			Stats: map[string]uint64{"total_inactive_file": 30 * mib, "total_rss": 60 * mib, "total_cache": 40 * mib,
				"total_mapped_file": 5 * mib, "total_pgfault": 7, "total_pgmajfault": 1,
				"inactive_file": 999 * mib, "rss": 999 * mib}, // non-hierarchical keys are ignored
		},
		want: Sample{MemoryUsage: 100 * mib, MemoryWorkingSet: 70 * mib, MemoryRSS: 60 * mib, MemoryCache: 40 * mib,
			MemoryMappedFile: 5 * mib, MemoryMaxUsage: 120 * mib, MemoryFailcnt: 3, MemoryLimit: 256 * mib,
			MemoryAvailable: 186 * mib, PageFaults: 7, MajorPageFaults: 1,
			SwapUsage: 10 * mib, SwapLimit: 256 * mib, SwapAvailable: 246 * mib},
	}, {
		name: "v1 unlimited",
		keys: v1Keys,
		mem: cgroups.MemoryStats{
			Usage:     cgroups.MemoryData{Usage: 10 * mib, Limit: v1Unlimited},
			SwapUsage: cgroups.MemoryData{Usage: 10 * mib, Limit: v1Unlimited},
			Stats:     map[string]uint64{"total_inactive_file": 4 * mib},
		},
		want: Sample{MemoryUsage: 10 * mib, MemoryWorkingSet: 6 * mib, MemoryLimit: Unlimited, SwapLimit: Unlimited},
	}, {
		name: "v1 memory limited, memsw not",
		keys: v1Keys,
		mem: cgroups.MemoryStats{
			Usage:     cgroups.MemoryData{Usage: 10 * mib, Limit: 64 * mib},
			SwapUsage: cgroups.MemoryData{Usage: 12 * mib, Limit: v1Unlimited},
		},
		want: Sample{MemoryUsage: 10 * mib, MemoryWorkingSet: 10 * mib, MemoryLimit: 64 * mib, MemoryAvailable: 54 * mib,
			SwapUsage: 2 * mib, SwapLimit: Unlimited},
	}, {
		name: "v1 no swap accounting",
		keys: v1Keys,
		mem:  cgroups.MemoryStats{Usage: cgroups.MemoryData{Usage: 10 * mib, Limit: 64 * mib}},
		want: Sample{MemoryUsage: 10 * mib, MemoryWorkingSet: 10 * mib, MemoryLimit: 64 * mib, MemoryAvailable: 54 * mib,
			SwapLimit: Unlimited},
	}, {
		name: "v1 swap forbidden (memsw = limit)",
		keys: v1Keys,
		mem: cgroups.MemoryStats{
			Usage:     cgroups.MemoryData{Usage: 10 * mib, Limit: 64 * mib},
			SwapUsage: cgroups.MemoryData{Usage: 10 * mib, Limit: 64 * mib},
		},
		want: Sample{MemoryUsage: 10 * mib, MemoryWorkingSet: 10 * mib, MemoryLimit: 64 * mib, MemoryAvailable: 54 * mib},
	}, {
		name: "working set floors at 0",
		keys: v2Keys,
		mem: cgroups.MemoryStats{
			Usage:         cgroups.MemoryData{Usage: 5 * mib, Limit: 4 * mib},
			SwapOnlyUsage: cgroups.MemoryData{Usage: 3 * mib, Limit: 2 * mib},
			Stats:         map[string]uint64{"inactive_file": 6 * mib, "anon": 1 * mib, "file": 4 * mib, "file_mapped": 1, "pgfault": 9, "pgmajfault": 2},
		},
		want: Sample{MemoryUsage: 5 * mib, MemoryRSS: 1 * mib, MemoryCache: 4 * mib, MemoryMappedFile: 1,
			MemoryLimit: 4 * mib, MemoryAvailable: 4 * mib, PageFaults: 9, MajorPageFaults: 2, SwapUsage: 3 * mib, SwapLimit: 2 * mib},
	}, {
		// A limit lowered below usage (UpdateContainerResources).
		name: "available floors at 0",
		keys: v2Keys,
		mem: cgroups.MemoryStats{
			Usage: cgroups.MemoryData{Usage: 5 * mib, Limit: 3 * mib},
			Stats: map[string]uint64{"inactive_file": 1 * mib},
		},
		want: Sample{MemoryUsage: 5 * mib, MemoryWorkingSet: 4 * mib, MemoryLimit: 3 * mib},
	}, {
		name: "v2 max",
		keys: v2Keys,
		mem: cgroups.MemoryStats{
			Usage:         cgroups.MemoryData{Usage: 5 * mib, Limit: math.MaxUint64},
			SwapOnlyUsage: cgroups.MemoryData{Usage: 1 * mib, Limit: math.MaxUint64},
			Stats:         map[string]uint64{"inactive_file": 1 * mib},
		},
		want: Sample{MemoryUsage: 5 * mib, MemoryWorkingSet: 4 * mib, MemoryLimit: Unlimited, SwapUsage: 1 * mib, SwapLimit: Unlimited},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			st := cgroups.NewStats()
			st.MemoryStats = tc.mem
			got := fromStats(st, tc.keys, time.Time{})
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestIOFrom(t *testing.T) {
	e := func(maj, min uint64, op string, v uint64) cgroups.BlkioStatEntry {
		return cgroups.BlkioStatEntry{Major: maj, Minor: min, Op: op, Value: v}
	}
	got := ioFrom(cgroups.BlkioStats{
		IoServiceBytesRecursive: []cgroups.BlkioStatEntry{
			e(253, 0, "Read", 100), e(253, 0, "Write", 10), e(253, 0, "Sync", 110), e(253, 0, "Total", 110),
			e(8, 0, "Read", 1), e(8, 0, "Write", 2), e(8, 0, "Discard", 50),
		},
		IoServicedRecursive: []cgroups.BlkioStatEntry{e(8, 0, "Read", 3), e(253, 0, "Write", 4), e(253, 0, "Total", 4)},
	})
	want := IO{ReadBytes: 101, WriteBytes: 12, ReadOps: 3, WriteOps: 4, Devices: []DeviceIO{
		{Major: 8, Minor: 0, ReadBytes: 1, WriteBytes: 2, ReadOps: 3},
		{Major: 253, Minor: 0, ReadBytes: 100, WriteBytes: 10, WriteOps: 4},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestCPURate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration, cpu uint64) Sample { return Sample{Timestamp: t0.Add(d), CPUUsageNanos: cpu} }
	for _, tc := range []struct {
		name      string
		prev, cur Sample
		want      uint64
		ok        bool
	}{
		{"one core", at(0, 0), at(10*time.Second, 10e9), 1e9, true},
		{"quarter core", at(0, 5e9), at(2*time.Second, 5.5e9), 250e6, true},
		{"idle", at(0, 7), at(time.Second, 7), 0, true},
		// 64 cores for 60s: the naive delta*1e9 overflows uint64.
		{"large", at(0, 0), at(time.Minute, 64*60e9), 64e9, true},
		{"same instant", at(0, 0), at(0, 5), 0, false},
		{"out of order", at(time.Second, 0), at(0, 5), 0, false},
		{"counter reset", at(0, 100), at(time.Second, 50), 0, false},
	} {
		got, ok := cpuRate(tc.prev, tc.cur)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: cpuRate = %d, %v; want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
