package server

import (
	"context"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/oci"
	"github.com/nodeagent/nodeagent/oci/stats"
)

// ContainerStats reports one container's usage from the sampler's memory.
func (s *Server) ContainerStats(_ context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.containers.Get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: s.containerStats(c.Record())}, nil
}

// ListContainerStats reports the usage of the containers a filter selects.
func (s *Server) ListContainerStats(_ context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	return &runtimeapi.ListContainerStatsResponse{Stats: s.listContainerStats(req.GetFilter())}, nil
}

// StreamContainerStats is ListContainerStats in batches.
func (s *Server) StreamContainerStats(req *runtimeapi.StreamContainerStatsRequest, stream runtimeapi.RuntimeService_StreamContainerStatsServer) error {
	return sendBatches(s.listContainerStats(req.GetFilter()), func(batch []*runtimeapi.ContainerStats) error {
		return stream.Send(&runtimeapi.StreamContainerStatsResponse{ContainerStats: batch})
	})
}

func (s *Server) listContainerStats(f *runtimeapi.ContainerStatsFilter) []*runtimeapi.ContainerStats {
	var out []*runtimeapi.ContainerStats
	for _, r := range s.containers.List() {
		if f != nil && (f.Id != "" && !strings.HasPrefix(r.ID, f.Id) ||
			f.PodSandboxId != "" && !strings.HasPrefix(r.SandboxID, f.PodSandboxId) ||
			!labelsMatch(r.Config.GetLabels(), f.LabelSelector)) {
			continue
		}
		out = append(out, s.containerStats(r))
	}
	return out
}

func (s *Server) containerStats(r oci.Record) *runtimeapi.ContainerStats {
	cfg := r.Config
	st := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
		Id: r.ID, Metadata: cfg.GetMetadata(), Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(),
	}}
	u := s.containers.Usage(r)
	if u.HasSample {
		st.Cpu, st.Memory, st.Swap = cpuUsage(u.Sample, u.NanoCores, u.HasNanoCores), memoryUsage(u.Sample), swapUsage(u.Sample)
	}
	if u.HasWritable {
		st.WritableLayer = &runtimeapi.FilesystemUsage{
			Timestamp:  time.Now().UnixNano(),
			FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: u.WritableMount},
			UsedBytes:  &runtimeapi.UInt64Value{Value: u.WritableBytes},
			InodesUsed: &runtimeapi.UInt64Value{Value: u.WritableInodes},
		}
	}
	return st
}

func cpuUsage(s stats.Sample, nanoCores uint64, hasRate bool) *runtimeapi.CpuUsage {
	c := &runtimeapi.CpuUsage{
		Timestamp:            s.Timestamp.UnixNano(),
		UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: s.CPUUsageNanos},
	}
	if hasRate {
		c.UsageNanoCores = &runtimeapi.UInt64Value{Value: nanoCores}
	}
	return c
}

func memoryUsage(s stats.Sample) *runtimeapi.MemoryUsage {
	m := &runtimeapi.MemoryUsage{
		Timestamp:       s.Timestamp.UnixNano(),
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: s.MemoryWorkingSet},
		UsageBytes:      &runtimeapi.UInt64Value{Value: s.MemoryUsage},
		RssBytes:        &runtimeapi.UInt64Value{Value: s.MemoryRSS},
		PageFaults:      &runtimeapi.UInt64Value{Value: s.PageFaults},
		MajorPageFaults: &runtimeapi.UInt64Value{Value: s.MajorPageFaults},
	}
	// kubelet leaves available unset when there is no limit.
	if s.MemoryLimit != stats.Unlimited {
		m.AvailableBytes = &runtimeapi.UInt64Value{Value: s.MemoryAvailable}
	}
	return m
}

func swapUsage(s stats.Sample) *runtimeapi.SwapUsage {
	sw := &runtimeapi.SwapUsage{
		Timestamp:      s.Timestamp.UnixNano(),
		SwapUsageBytes: &runtimeapi.UInt64Value{Value: s.SwapUsage},
	}
	if s.SwapLimit != stats.Unlimited {
		sw.SwapAvailableBytes = &runtimeapi.UInt64Value{Value: s.SwapAvailable}
	}
	return sw
}
