package podmetrics

import (
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/oci/stats"
)

const (
	counter = runtimeapi.MetricType_COUNTER
	gauge   = runtimeapi.MetricType_GAUGE
)

// deviceName names a block device for the device label ("/dev/vda", as
// cAdvisor does); a variable so that tests need no real devices.
var deviceName = stats.BlockDeviceName

// cgroupMetrics are read from a cgroup sample: a pod's or a container's.
var cgroupMetrics = []metric{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", counter, []string{"cpu"},
		func(s source) []value { return []value{{v: seconds(s.sample.CPUUsageNanos), extra: []string{"total"}}} }},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", counter, nil,
		one(func(s source) uint64 { return seconds(s.sample.CPUUserNanos) })},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", counter, nil,
		one(func(s source) uint64 { return seconds(s.sample.CPUSystemNanos) })},
	// The CFS series exist only while a quota is in force, as in cAdvisor.
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", counter, nil,
		throttled(func(s *stats.Sample) uint64 { return s.CPUPeriods })},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", counter, nil,
		throttled(func(s *stats.Sample) uint64 { return s.CPUThrottledPeriods })},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", counter, nil,
		throttled(func(s *stats.Sample) uint64 { return seconds(s.CPUThrottledNanos) })},

	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", gauge, nil,
		one(func(s source) uint64 { return s.sample.MemoryUsage })},
	{"container_memory_working_set_bytes", "Current working set in bytes.", gauge, nil,
		one(func(s source) uint64 { return s.sample.MemoryWorkingSet })},
	{"container_memory_rss", "Size of RSS in bytes.", gauge, nil,
		one(func(s source) uint64 { return s.sample.MemoryRSS })},
	{"container_memory_cache", "Number of bytes of page cache memory.", gauge, nil,
		one(func(s source) uint64 { return s.sample.MemoryCache })},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", gauge, nil,
		one(func(s source) uint64 { return s.sample.MemoryMappedFile })},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", gauge, nil,
		one(func(s source) uint64 { return s.sample.MemoryKernel })},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", gauge, nil,
		one(func(s source) uint64 { return s.sample.MemoryMaxUsage })},
	{"container_memory_failcnt", "Number of memory usage hits limits.", counter, nil,
		one(func(s source) uint64 { return s.sample.MemoryFailcnt })},
	{"container_memory_swap", "Container swap usage in bytes.", gauge, nil,
		one(func(s source) uint64 { return s.sample.SwapUsage })},
	// memory.stat's fault counters are hierarchical on both cgroup versions
	// as read, so only the "hierarchy" scope is reported.
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", counter, []string{"failure_type", "scope"},
		func(s source) []value {
			return []value{
				{v: s.sample.PageFaults, extra: []string{"pgfault", "hierarchy"}},
				{v: s.sample.MajorPageFaults, extra: []string{"pgmajfault", "hierarchy"}},
			}
		}},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", counter, nil,
		one(func(s source) uint64 { return s.sample.OOMKills })},
	{"container_threads", "Number of threads running inside the container.", gauge, nil,
		one(func(s source) uint64 { return s.sample.PIDs })},

	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", counter, []string{"device"},
		perDevice(func(d stats.DeviceIO) uint64 { return d.ReadBytes })},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", counter, []string{"device"},
		perDevice(func(d stats.DeviceIO) uint64 { return d.WriteBytes })},
	{"container_fs_reads_total", "Cumulative count of reads completed.", counter, []string{"device"},
		perDevice(func(d stats.DeviceIO) uint64 { return d.ReadOps })},
	{"container_fs_writes_total", "Cumulative count of writes completed.", counter, []string{"device"},
		perDevice(func(d stats.DeviceIO) uint64 { return d.WriteOps })},

	{"container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU pressure.", counter, nil,
		pressure(func(p *stats.PSI) *stats.Pressure { return p.CPU }, false)},
	{"container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.", counter, nil,
		pressure(func(p *stats.PSI) *stats.Pressure { return p.CPU }, true)},
	{"container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory pressure.", counter, nil,
		pressure(func(p *stats.PSI) *stats.Pressure { return p.Memory }, false)},
	{"container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.", counter, nil,
		pressure(func(p *stats.PSI) *stats.Pressure { return p.Memory }, true)},
	{"container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO pressure.", counter, nil,
		pressure(func(p *stats.PSI) *stats.Pressure { return p.IO }, false)},
	{"container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.", counter, nil,
		pressure(func(p *stats.PSI) *stats.Pressure { return p.IO }, true)},
}

// networkMetrics are a pod's interface counters.
var networkMetrics = []metric{
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", counter, []string{"interface"},
		perInterface(func(i stats.Interface) uint64 { return i.RxBytes })},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", counter, []string{"interface"},
		perInterface(func(i stats.Interface) uint64 { return i.RxPackets })},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", counter, []string{"interface"},
		perInterface(func(i stats.Interface) uint64 { return i.RxDropped })},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", counter, []string{"interface"},
		perInterface(func(i stats.Interface) uint64 { return i.RxErrors })},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", counter, []string{"interface"},
		perInterface(func(i stats.Interface) uint64 { return i.TxBytes })},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", counter, []string{"interface"},
		perInterface(func(i stats.Interface) uint64 { return i.TxPackets })},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", counter, []string{"interface"},
		perInterface(func(i stats.Interface) uint64 { return i.TxDropped })},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", counter, []string{"interface"},
		perInterface(func(i stats.Interface) uint64 { return i.TxErrors })},
}

// containerMetrics come from a container's record and writable layer.
var containerMetrics = []metric{
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", gauge, nil,
		func(s source) []value {
			if s.container.StartedAt.IsZero() {
				return nil
			}
			return []value{{v: uint64(s.container.StartedAt.Unix())}}
		}},
	{"container_spec_memory_limit_bytes", "Memory limit for the container in bytes (0: none).", gauge, nil,
		one(func(s source) uint64 { return positive(s.container.Resources.GetMemoryLimitInBytes()) })},
	{"container_spec_memory_swap_limit_bytes", "Memory and swap limit for the container in bytes (0: none).", gauge, nil,
		one(func(s source) uint64 { return positive(s.container.Resources.GetMemorySwapLimitInBytes()) })},
	{"container_spec_cpu_shares", "CPU share of the container.", gauge, nil,
		one(func(s source) uint64 { return positive(s.container.Resources.GetCpuShares()) })},
	// Period and quota exist only with a quota, as in cAdvisor.
	{"container_spec_cpu_period", "CPU period of the container.", gauge, nil,
		withQuota(func(r *runtimeapi.LinuxContainerResources) uint64 { return positive(r.GetCpuPeriod()) })},
	{"container_spec_cpu_quota", "CPU quota of the container.", gauge, nil,
		withQuota(func(r *runtimeapi.LinuxContainerResources) uint64 { return positive(r.GetCpuQuota()) })},

	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", gauge, []string{"device"},
		writable(func(f *Filesystem) uint64 { return f.UsedBytes })},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", gauge, []string{"device"},
		writable(func(f *Filesystem) uint64 { return f.CapacityBytes })},
	{"container_fs_inodes_total", "Number of Inodes.", gauge, []string{"device"},
		writable(func(f *Filesystem) uint64 { return f.TotalInodes })},
	{"container_fs_inodes_free", "Number of available Inodes.", gauge, []string{"device"},
		writable(func(f *Filesystem) uint64 { return f.FreeInodes })},
}

func throttled(f func(*stats.Sample) uint64) func(source) []value {
	return func(s source) []value {
		if s.sample.CPUPeriods == 0 {
			return nil
		}
		return []value{{v: f(s.sample)}}
	}
}

func perDevice(f func(stats.DeviceIO) uint64) func(source) []value {
	return func(s source) []value {
		out := make([]value, 0, len(s.sample.IO.Devices))
		for _, d := range s.sample.IO.Devices {
			out = append(out, value{v: f(d), extra: []string{deviceName(d.Major, d.Minor)}})
		}
		return out
	}
}

// pressure reports a PSI file's cumulative "some" (waiting) or "full"
// (stalled) time, given in microseconds.
func pressure(pick func(*stats.PSI) *stats.Pressure, full bool) func(source) []value {
	return func(s source) []value {
		if s.sample.PSI == nil {
			return nil
		}
		p := pick(s.sample.PSI)
		if p == nil {
			return nil
		}
		us := p.Some.Total
		if full {
			us = p.Full.Total
		}
		return []value{{v: us / 1e6}}
	}
}

func perInterface(f func(stats.Interface) uint64) func(source) []value {
	return func(s source) []value {
		out := make([]value, 0, len(s.network))
		for _, i := range s.network {
			out = append(out, value{v: f(i), extra: []string{i.Name}})
		}
		return out
	}
}

func withQuota(f func(*runtimeapi.LinuxContainerResources) uint64) func(source) []value {
	return func(s source) []value {
		if r := s.container.Resources; r.GetCpuQuota() > 0 {
			return []value{{v: f(r)}}
		}
		return nil
	}
}

func writable(f func(*Filesystem) uint64) func(source) []value {
	return func(s source) []value {
		if s.container.Writable == nil {
			return nil
		}
		return []value{{v: f(s.container.Writable), extra: []string{s.container.Writable.Device}}}
	}
}

// positive maps the CRI's signed "unset" values (0, -1) to 0.
func positive(v int64) uint64 {
	if v <= 0 {
		return 0
	}
	return uint64(v)
}
