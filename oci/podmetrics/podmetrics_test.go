package podmetrics

import (
	"fmt"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/oci/stats"
)

func init() {
	deviceName = func(major, minor uint64) string { return fmt.Sprintf("/dev/test%d-%d", major, minor) }
}

var (
	sampledAt = time.Unix(1700000000, 5)
	now       = time.Unix(1700000010, 0)
)

func sample() *stats.Sample {
	return &stats.Sample{
		Timestamp:     sampledAt,
		CPUUsageNanos: 2_999_999_999, CPUUserNanos: 1_500_000_000, CPUSystemNanos: 900_000_000,
		MemoryUsage: 10 << 20, MemoryWorkingSet: 8 << 20, MemoryRSS: 6 << 20, MemoryCache: 4 << 20,
		PageFaults: 100, MajorPageFaults: 3, OOMKills: 1, PIDs: 7,
		IO: stats.IO{Devices: []stats.DeviceIO{{Major: 254, Minor: 0, ReadBytes: 4096, WriteBytes: 8192, ReadOps: 1, WriteOps: 2}}},
	}
}

func testPod() Pod {
	pl := Labels{ID: "/kubepods/podu1", Namespace: "ns", Pod: "web"}
	return Pod{
		ID: "sb1", Labels: pl, Cgroup: sample(),
		Network: []stats.Interface{{Name: "eth0", RxBytes: 1000, TxBytes: 2000, RxPackets: 10, TxPackets: 20}},
		Containers: []Container{{
			ID:        "c1",
			Labels:    Labels{Container: "app", ID: "/kubepods/podu1/c1", Image: "busybox:1", Name: "c1", Namespace: "ns", Pod: "web"},
			Cgroup:    sample(),
			StartedAt: time.Unix(1699999000, 0),
			Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 512, CpuQuota: -1, CpuPeriod: 100000},
			Writable:  &Filesystem{Device: "/var/lib/nodeagent/containers", UsedBytes: 12345, CapacityBytes: 1 << 30, TotalInodes: 1000, FreeInodes: 900},
		}},
	}
}

// find returns the value and timestamp of the series name{labels...}; ok is
// false when there is none.
func find(ms []*runtimeapi.Metric, name string, labels ...string) (uint64, int64, bool) {
	for _, m := range ms {
		if m.Name == name && strings.Join(m.LabelValues, ",") == strings.Join(labels, ",") {
			return m.Value.Value, m.Timestamp, true
		}
	}
	return 0, 0, false
}

func TestBuild(t *testing.T) {
	got := Build(testPod(), now)
	pod := []string{"", "/kubepods/podu1", "", "", "ns", "web"}
	podNet := []string{"POD", "/kubepods/podu1", "", "sb1", "ns", "web"}
	ctr := []string{"app", "/kubepods/podu1/c1", "busybox:1", "c1", "ns", "web"}
	with := func(base []string, extra ...string) []string { return append(append([]string(nil), base...), extra...) }
	if got.PodSandboxId != "sb1" || len(got.ContainerMetrics) != 1 || got.ContainerMetrics[0].ContainerId != "c1" {
		t.Fatalf("ids: %s %v", got.PodSandboxId, got.ContainerMetrics)
	}
	cm := got.ContainerMetrics[0].Metrics
	tests := []struct {
		name   string
		in     []*runtimeapi.Metric
		metric string
		labels []string
		want   uint64
		ts     time.Time
	}{
		// Seconds are whole seconds, truncated: 2.999999999 s is 2.
		{"pod cpu", got.Metrics, "container_cpu_usage_seconds_total", with(pod, "total"), 2, sampledAt},
		{"pod working set", got.Metrics, "container_memory_working_set_bytes", pod, 8 << 20, sampledAt},
		{"pod network rx", got.Metrics, "container_network_receive_bytes_total", with(podNet, "eth0"), 1000, now},
		{"pod network tx", got.Metrics, "container_network_transmit_bytes_total", with(podNet, "eth0"), 2000, now},
		{"cpu user", cm, "container_cpu_user_seconds_total", ctr, 1, sampledAt},
		{"cpu system", cm, "container_cpu_system_seconds_total", ctr, 0, sampledAt},
		{"rss", cm, "container_memory_rss", ctr, 6 << 20, sampledAt},
		{"page faults", cm, "container_memory_failures_total", with(ctr, "pgfault", "hierarchy"), 100, sampledAt},
		{"major faults", cm, "container_memory_failures_total", with(ctr, "pgmajfault", "hierarchy"), 3, sampledAt},
		{"oom", cm, "container_oom_events_total", ctr, 1, sampledAt},
		{"threads", cm, "container_threads", ctr, 7, sampledAt},
		{"io read bytes", cm, "container_fs_reads_bytes_total", with(ctr, "/dev/test254-0"), 4096, sampledAt},
		{"io writes", cm, "container_fs_writes_total", with(ctr, "/dev/test254-0"), 2, sampledAt},
		{"start time", cm, "container_start_time_seconds", ctr, 1699999000, now},
		{"memory limit", cm, "container_spec_memory_limit_bytes", ctr, 64 << 20, now},
		{"no swap limit", cm, "container_spec_memory_swap_limit_bytes", ctr, 0, now},
		{"shares", cm, "container_spec_cpu_shares", ctr, 512, now},
		{"fs usage", cm, "container_fs_usage_bytes", with(ctr, "/var/lib/nodeagent/containers"), 12345, now},
		{"fs inodes free", cm, "container_fs_inodes_free", with(ctr, "/var/lib/nodeagent/containers"), 900, now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ts, ok := find(tt.in, tt.metric, tt.labels...)
			if !ok {
				t.Fatalf("no series %s%q", tt.metric, tt.labels)
			}
			if v != tt.want || ts != tt.ts.UnixNano() {
				t.Errorf("%s = %d at %d, want %d at %d", tt.metric, v, ts, tt.want, tt.ts.UnixNano())
			}
		})
	}
}

// Series that cAdvisor only has under a condition are absent without it.
func TestBuildConditionalSeries(t *testing.T) {
	p := testPod()
	p.Network = nil                                 // host network
	p.Containers[0].Writable = nil                  // not measured yet
	p.Containers[0].StartedAt = time.Time{}         // not started
	cm := Build(p, now).ContainerMetrics[0].Metrics // no quota, no CFS periods, no PSI
	for _, name := range []string{
		"container_cpu_cfs_periods_total", "container_spec_cpu_quota", "container_spec_cpu_period",
		"container_pressure_cpu_waiting_seconds_total", "container_fs_usage_bytes", "container_start_time_seconds",
	} {
		for _, m := range cm {
			if m.Name == name {
				t.Errorf("%s reported: %v", name, m)
			}
		}
	}
	for _, m := range Build(p, now).Metrics {
		if strings.HasPrefix(m.Name, "container_network_") {
			t.Errorf("network metric for a host-network pod: %v", m)
		}
	}

	// With a quota in force and PSI: the series appear.
	p.Containers[0].Resources.CpuQuota = 50000
	p.Containers[0].Cgroup.CPUPeriods, p.Containers[0].Cgroup.CPUThrottledPeriods, p.Containers[0].Cgroup.CPUThrottledNanos = 40, 4, 3_500_000_000
	p.Containers[0].Cgroup.PSI = &stats.PSI{CPU: &stats.Pressure{Some: stats.PressureData{Total: 2_500_000}, Full: stats.PressureData{Total: 1_000_000}}}
	cm = Build(p, now).ContainerMetrics[0].Metrics
	ctr := p.Containers[0].Labels.values()
	for name, want := range map[string]uint64{
		"container_spec_cpu_quota": 50000, "container_spec_cpu_period": 100000,
		"container_cpu_cfs_periods_total": 40, "container_cpu_cfs_throttled_periods_total": 4,
		"container_cpu_cfs_throttled_seconds_total":    3,
		"container_pressure_cpu_waiting_seconds_total": 2, "container_pressure_cpu_stalled_seconds_total": 1,
	} {
		if v, _, ok := find(cm, name, ctr...); !ok || v != want {
			t.Errorf("%s = %d (present %v), want %d", name, v, ok, want)
		}
	}
	if _, _, ok := find(cm, "container_pressure_memory_waiting_seconds_total", ctr...); ok {
		t.Error("memory pressure reported without a memory pressure file")
	}
}

// Every series Build emits has a descriptor, with as many label values as
// the descriptor has keys; kubelet drops anything else.
func TestDescriptorsCoverEverySeries(t *testing.T) {
	keys := map[string]int{}
	for _, d := range Descriptors() {
		if _, dup := keys[d.Name]; dup {
			t.Errorf("descriptor %s twice", d.Name)
		}
		if !strings.HasPrefix(d.Name, "container_") || d.Help == "" {
			t.Errorf("descriptor %s: not a cAdvisor-style name or no help", d.Name)
		}
		keys[d.Name] = len(d.LabelKeys)
	}
	p := testPod()
	p.Containers[0].Resources.CpuQuota = 50000
	p.Containers[0].Cgroup.CPUPeriods = 1
	p.Containers[0].Cgroup.PSI = &stats.PSI{CPU: &stats.Pressure{}, Memory: &stats.Pressure{}, IO: &stats.Pressure{}}
	got := Build(p, now)
	all := append([]*runtimeapi.Metric(nil), got.Metrics...)
	for _, c := range got.ContainerMetrics {
		all = append(all, c.Metrics...)
	}
	seen := map[string]bool{}
	for _, m := range all {
		n, ok := keys[m.Name]
		if !ok {
			t.Errorf("%s has no descriptor", m.Name)
		} else if n != len(m.LabelValues) {
			t.Errorf("%s: %d label values for %d keys", m.Name, len(m.LabelValues), n)
		}
		seen[m.Name] = true
	}
	for name := range keys {
		if !seen[name] {
			t.Errorf("descriptor %s is never emitted", name)
		}
	}
}
