package stats

import (
	"errors"
	"reflect"
	"testing"

	"github.com/containerd/errdefs"
)

// The v2 fixtures stand in for a v2 host (this VM's v2 hierarchy holds only
// hugetlb); the expected values are the fixture files' contents.
func TestReadV2Fixture(t *testing.T) {
	r := NewReaderAt("testdata/v2", Unified)

	t.Run("systemd path, everything", func(t *testing.T) {
		s, err := r.Read("kubepods-besteffort-pod1.slice:nodeagent:abc")
		if err != nil {
			t.Fatal(err)
		}
		if s.Timestamp.IsZero() {
			t.Error("no timestamp")
		}
		s.Timestamp = s.Timestamp.UTC().Truncate(0)
		want := Sample{
			Timestamp:     s.Timestamp,
			CPUUsageNanos: 1234567000, CPUUserNanos: 1000000000, CPUSystemNanos: 234567000,
			CPUPeriods: 120, CPUThrottledPeriods: 7, CPUThrottledNanos: 85000000,
			MemoryUsage:      12771328,
			MemoryWorkingSet: 12771328 - 6504448,
			MemoryRSS:        2408448, MemoryCache: 9134080, MemoryMappedFile: 5541888,
			MemoryMaxUsage:  15728640,
			MemoryLimit:     268435456,
			MemoryAvailable: 268435456 - (12771328 - 6504448),
			PageFaults:      5283, MajorPageFaults: 42,
			OOMKills:  1,
			SwapUsage: 1048576, SwapLimit: 536870912, SwapAvailable: 536870912 - 1048576,
			PIDs: 3,
			IO: IO{ReadBytes: 3145728, WriteBytes: 12288, ReadOps: 48, WriteOps: 3, Devices: []DeviceIO{
				{Major: 8, Minor: 0, ReadBytes: 1048576, WriteBytes: 4096, ReadOps: 16, WriteOps: 1},
				{Major: 253, Minor: 0, ReadBytes: 2097152, WriteBytes: 8192, ReadOps: 32, WriteOps: 2},
			}},
			PSI: &PSI{
				CPU:    &Pressure{Some: PressureData{123456, 1.5, 0.75, 0.2}, Full: PressureData{45678, 0.5, 0.25, 0.05}},
				Memory: &Pressure{Some: PressureData{9876, 0, 0.1, 0.02}, Full: PressureData{5432, 0, 0.05, 0.01}},
				IO:     &Pressure{Some: PressureData{777777, 3.25, 1, 0.3}, Full: PressureData{666666, 2, 0.8, 0.25}},
			},
		}
		if !reflect.DeepEqual(s, want) {
			t.Errorf("got  %+v\nwant %+v", s, want)
		}
	})

	t.Run("cgroupfs path, bare", func(t *testing.T) {
		s, err := r.Read("/kubepods/pod1/ctr1")
		if err != nil {
			t.Fatal(err)
		}
		s.Timestamp = s.Timestamp.UTC().Truncate(0)
		want := Sample{
			Timestamp:     s.Timestamp,
			CPUUsageNanos: 500000, CPUUserNanos: 300000, CPUSystemNanos: 200000,
			MemoryUsage: 1048576, MemoryRSS: 524288, MemoryCache: 2097152, PageFaults: 10,
			MemoryLimit: Unlimited, // memory.max "max"; working set floors at 0 (inactive_file > current)
			PIDs:        2,         // no pids controller: lines of cgroup.procs
		}
		if !reflect.DeepEqual(s, want) {
			t.Errorf("got  %+v\nwant %+v", s, want)
		}
	})

	t.Run("missing", func(t *testing.T) {
		for _, p := range []string{"/kubepods/pod1/gone", "kubepods-besteffort-pod1.slice:nodeagent:gone"} {
			if _, err := r.Read(p); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("Read(%q) = %v, want NotFound", p, err)
			}
		}
	})

	t.Run("bad path", func(t *testing.T) {
		if _, err := r.Read("a:b"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Read(a:b) = %v, want InvalidArgument", err)
		}
	})
}
