package stats

import (
	"cmp"
	"math"
	"slices"
	"time"

	"github.com/opencontainers/cgroups"
)

// Unlimited is the value of MemoryLimit and SwapLimit when there is no limit.
const Unlimited = math.MaxUint64

// maxLimit: a v1 limit above this is "no limit". The kernel reports an unset
// v1 limit as PAGE_COUNTER_MAX rounded to pages, not as MaxInt64; kubelet
// uses the same threshold (pkg/kubelet/server/stats: maxMemorySize).
const maxLimit = 1 << 62

// Sample is one reading of a cgroup. Counters are cumulative since the cgroup
// was created; sizes are bytes.
type Sample struct {
	Timestamp time.Time

	// CPU time in nanoseconds (v1 cpuacct.usage and cpuacct.stat; v2
	// cpu.stat usage_usec, user_usec, system_usec × 1000).
	CPUUsageNanos, CPUUserNanos, CPUSystemNanos uint64
	// CFS bandwidth throttling (cpu.stat): periods elapsed, periods
	// throttled, time throttled in nanoseconds.
	CPUPeriods, CPUThrottledPeriods, CPUThrottledNanos uint64

	// MemoryUsage is memory.usage_in_bytes (v1) or memory.current (v2).
	MemoryUsage uint64
	// MemoryWorkingSet is MemoryUsage minus inactive file pages (v1
	// total_inactive_file, v2 inactive_file), floored at 0: what kubelet
	// evicts on.
	MemoryWorkingSet uint64
	// MemoryRSS is anonymous memory (v1 total_rss, v2 anon).
	MemoryRSS uint64
	// MemoryCache is page cache (v1 total_cache, v2 file); MemoryMappedFile
	// the mapped part of it (v1 total_mapped_file, v2 file_mapped).
	MemoryCache, MemoryMappedFile uint64
	// MemoryKernel is v1 memory.kmem.usage_in_bytes (0 on v2, where kernel
	// memory is part of MemoryUsage).
	MemoryKernel uint64
	// MemoryMaxUsage is the high-water mark (v1 max_usage_in_bytes, v2
	// memory.peak since Linux 5.19, else 0); MemoryFailcnt the number of
	// times the limit was hit (v1 only).
	MemoryMaxUsage, MemoryFailcnt uint64
	// MemoryLimit is the hard limit, Unlimited when none.
	MemoryLimit uint64
	// MemoryAvailable is MemoryLimit - MemoryWorkingSet floored at 0, and 0
	// when MemoryLimit is Unlimited (kubelet then leaves available unset).
	MemoryAvailable uint64
	// PageFaults and MajorPageFaults (memory.stat [total_]pgfault, pgmajfault).
	PageFaults, MajorPageFaults uint64
	// OOMKills counts processes the OOM killer killed in the cgroup (v1
	// memory.oom_control oom_kill, v2 memory.events oom_kill), 0 if unknown.
	OOMKills uint64

	// SwapUsage is swap only (v1 memsw.usage - usage; v2 memory.swap.current).
	SwapUsage uint64
	// SwapLimit is the swap-only limit (v1 memsw.limit - limit; v2
	// memory.swap.max), Unlimited when none or when swap is not accounted.
	SwapLimit uint64
	// SwapAvailable is SwapLimit - SwapUsage floored at 0, 0 when Unlimited.
	SwapAvailable uint64

	// PIDs is pids.current: tasks, i.e. threads, in the cgroup (v2 without
	// the pids controller: the lines of cgroup.procs).
	PIDs uint64

	IO IO
	// PSI is pressure stall information, nil where the kernel or the
	// layout has none (v1 without a unified hierarchy, or psi=0).
	PSI *PSI
}

// IO is block I/O: totals over devices and the per-device rows they sum
// (v1 blkio.throttle.io_service{_bytes,d}[_recursive], v2 io.stat).
type IO struct {
	ReadBytes, WriteBytes, ReadOps, WriteOps uint64
	Devices                                  []DeviceIO
}

// DeviceIO is the I/O of one block device.
type DeviceIO struct {
	Major, Minor                             uint64
	ReadBytes, WriteBytes, ReadOps, WriteOps uint64
}

// PSI is pressure stall information of a cgroup. A nil field means that
// resource's pressure file is absent.
type PSI struct {
	CPU, Memory, IO *Pressure
}

// Pressure is one pressure file: "some" (at least one task stalled) and
// "full" (all non-idle tasks stalled).
type Pressure struct {
	Some, Full PressureData
}

// PressureData is one line of a pressure file. Total is cumulative stall
// time in microseconds; the averages are percentages over 10s, 60s, 300s.
type PressureData struct {
	Total                uint64
	Avg10, Avg60, Avg300 float64
}

// memKeys names the memory.stat keys a Sample uses, which differ between v1
// (hierarchical totals) and v2.
type memKeys struct {
	inactiveFile, rss, cache, mappedFile, pgfault, pgmajfault string
	// v1: swap is read from memsw, which counts memory+swap; v2 swap
	// files count swap only.
	v1 bool
}

var (
	v1Keys = memKeys{"total_inactive_file", "total_rss", "total_cache", "total_mapped_file", "total_pgfault", "total_pgmajfault", true}
	v2Keys = memKeys{"inactive_file", "anon", "file", "file_mapped", "pgfault", "pgmajfault", false}
)

// fromStats maps the library's stats to a Sample. Pure: table-tested.
func fromStats(st *cgroups.Stats, k memKeys, ts time.Time) Sample {
	mem := st.MemoryStats
	s := Sample{
		Timestamp:           ts,
		CPUUsageNanos:       st.CpuStats.CpuUsage.TotalUsage,
		CPUUserNanos:        st.CpuStats.CpuUsage.UsageInUsermode,
		CPUSystemNanos:      st.CpuStats.CpuUsage.UsageInKernelmode,
		CPUPeriods:          st.CpuStats.ThrottlingData.Periods,
		CPUThrottledPeriods: st.CpuStats.ThrottlingData.ThrottledPeriods,
		CPUThrottledNanos:   st.CpuStats.ThrottlingData.ThrottledTime,
		MemoryUsage:         mem.Usage.Usage,
		MemoryRSS:           mem.Stats[k.rss],
		MemoryCache:         mem.Stats[k.cache],
		MemoryMappedFile:    mem.Stats[k.mappedFile],
		MemoryKernel:        mem.KernelUsage.Usage,
		MemoryMaxUsage:      mem.Usage.MaxUsage,
		MemoryFailcnt:       mem.Usage.Failcnt,
		MemoryLimit:         limit(mem.Usage.Limit),
		PageFaults:          mem.Stats[k.pgfault],
		MajorPageFaults:     mem.Stats[k.pgmajfault],
		PIDs:                st.PidsStats.Current,
		IO:                  ioFrom(st.BlkioStats),
	}
	s.MemoryWorkingSet = sub(s.MemoryUsage, mem.Stats[k.inactiveFile])
	if s.MemoryLimit != Unlimited {
		s.MemoryAvailable = sub(s.MemoryLimit, s.MemoryWorkingSet)
	}
	s.SwapUsage, s.SwapLimit = swap(mem, k.v1)
	if s.SwapLimit != Unlimited {
		s.SwapAvailable = sub(s.SwapLimit, s.SwapUsage)
	}
	return s
}

func swap(mem cgroups.MemoryStats, v1 bool) (usage, lim uint64) {
	if !v1 {
		// No memory.swap.current (swap not accounted) leaves the library's
		// SwapOnlyUsage zero, indistinguishable from swap.max=0: both
		// mean no swap may be used as far as the cgroup can tell.
		return mem.SwapOnlyUsage.Usage, limit(mem.SwapOnlyUsage.Limit)
	}
	// v1 memsw counts memory+swap; zero means swap accounting is off (it
	// is never below memory usage otherwise). The library's SwapOnlyUsage
	// would underflow then, so it is recomputed here.
	if mem.SwapUsage.Usage == 0 {
		return 0, Unlimited
	}
	usage = sub(mem.SwapUsage.Usage, mem.Usage.Usage)
	lim = Unlimited
	if both := limit(mem.SwapUsage.Limit); both != Unlimited && limit(mem.Usage.Limit) != Unlimited {
		lim = sub(both, mem.Usage.Limit)
	}
	return usage, lim
}

func limit(v uint64) uint64 {
	if v > maxLimit {
		return Unlimited
	}
	return v
}

// sub is a-b floored at 0.
func sub(a, b uint64) uint64 {
	if a < b {
		return 0
	}
	return a - b
}

func ioFrom(b cgroups.BlkioStats) IO {
	var io IO
	index := map[[2]uint64]int{}
	row := func(e cgroups.BlkioStatEntry) *DeviceIO {
		key := [2]uint64{e.Major, e.Minor}
		i, ok := index[key]
		if !ok {
			i = len(io.Devices)
			index[key] = i
			io.Devices = append(io.Devices, DeviceIO{Major: e.Major, Minor: e.Minor})
		}
		return &io.Devices[i]
	}
	// v1 rows also carry Sync, Async, Discard and Total: only Read and
	// Write are summed, so nothing is counted twice.
	for _, e := range b.IoServiceBytesRecursive {
		switch e.Op {
		case "Read":
			row(e).ReadBytes += e.Value
			io.ReadBytes += e.Value
		case "Write":
			row(e).WriteBytes += e.Value
			io.WriteBytes += e.Value
		}
	}
	for _, e := range b.IoServicedRecursive {
		switch e.Op {
		case "Read":
			row(e).ReadOps += e.Value
			io.ReadOps += e.Value
		case "Write":
			row(e).WriteOps += e.Value
			io.WriteOps += e.Value
		}
	}
	slices.SortFunc(io.Devices, func(a, b DeviceIO) int {
		return cmp.Or(cmp.Compare(a.Major, b.Major), cmp.Compare(a.Minor, b.Minor))
	})
	return io
}

func psiFrom(st *cgroups.Stats) *PSI {
	p := PSI{
		CPU:    pressure(st.CpuStats.PSI),
		Memory: pressure(st.MemoryStats.PSI),
		IO:     pressure(st.BlkioStats.PSI),
	}
	if p.CPU == nil && p.Memory == nil && p.IO == nil {
		return nil
	}
	return &p
}

func pressure(p *cgroups.PSIStats) *Pressure {
	if p == nil {
		return nil
	}
	conv := func(d cgroups.PSIData) PressureData {
		return PressureData{Total: d.Total, Avg10: d.Avg10, Avg60: d.Avg60, Avg300: d.Avg300}
	}
	return &Pressure{Some: conv(p.Some), Full: conv(p.Full)}
}
