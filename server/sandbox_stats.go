package server

import (
	"context"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/oci/stats"
	"github.com/nodeagent/nodeagent/sandbox"
)

// PodSandboxStats reports a pod's usage: its cgroup, network and containers.
func (s *Server) PodSandboxStats(_ context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: s.podStats(sb.Record())}, nil
}

// ListPodSandboxStats reports the usage of the pods a filter selects.
func (s *Server) ListPodSandboxStats(_ context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: s.listPodStats(req.GetFilter())}, nil
}

// StreamPodSandboxStats is ListPodSandboxStats in batches.
func (s *Server) StreamPodSandboxStats(req *runtimeapi.StreamPodSandboxStatsRequest, stream runtimeapi.RuntimeService_StreamPodSandboxStatsServer) error {
	return sendBatches(s.listPodStats(req.GetFilter()), func(batch []*runtimeapi.PodSandboxStats) error {
		return stream.Send(&runtimeapi.StreamPodSandboxStatsResponse{PodSandboxStats: batch})
	})
}

func (s *Server) listPodStats(f *runtimeapi.PodSandboxStatsFilter) []*runtimeapi.PodSandboxStats {
	var out []*runtimeapi.PodSandboxStats
	for _, r := range s.sandboxes.List() {
		if f != nil && (f.Id != "" && !strings.HasPrefix(r.ID, f.Id) || !labelsMatch(r.Config.GetLabels(), f.LabelSelector)) {
			continue
		}
		out = append(out, s.podStats(r))
	}
	return out
}

func (s *Server) podStats(r sandbox.Record) *runtimeapi.PodSandboxStats {
	c := r.Config
	linux := &runtimeapi.LinuxPodSandboxStats{}
	u := s.containers.PodUsage(r.ID, c.GetLinux().GetCgroupParent())
	if u.HasSample {
		linux.Cpu = cpuUsage(u.Sample, u.NanoCores, u.HasNanoCores)
		linux.Memory = memoryUsage(u.Sample)
		linux.Process = &runtimeapi.ProcessUsage{Timestamp: u.Sample.Timestamp.UnixNano(), ProcessCount: &runtimeapi.UInt64Value{Value: u.Sample.PIDs}}
	}
	if r.NetNS != "" && r.State == sandbox.StateReady {
		if ifs, err := stats.NetworkStats(r.NetNS); err == nil {
			linux.Network = networkUsage(ifs)
		}
	}
	for _, cr := range s.containers.ListSandbox(r.ID) {
		linux.Containers = append(linux.Containers, s.containerStats(cr))
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: r.ID, Metadata: c.GetMetadata(), Labels: c.GetLabels(), Annotations: c.GetAnnotations()},
		Linux:      linux,
	}
}

// networkUsage reports every interface but lo; eth0 (CNI's) is the default.
func networkUsage(ifs []stats.Interface) *runtimeapi.NetworkUsage {
	n := &runtimeapi.NetworkUsage{Timestamp: time.Now().UnixNano()}
	for _, i := range ifs {
		if i.Name == "lo" {
			continue
		}
		u := &runtimeapi.NetworkInterfaceUsage{
			Name:    i.Name,
			RxBytes: &runtimeapi.UInt64Value{Value: i.RxBytes}, RxErrors: &runtimeapi.UInt64Value{Value: i.RxErrors},
			TxBytes: &runtimeapi.UInt64Value{Value: i.TxBytes}, TxErrors: &runtimeapi.UInt64Value{Value: i.TxErrors},
		}
		n.Interfaces = append(n.Interfaces, u)
		if i.Name == "eth0" {
			n.DefaultInterface = u
		}
	}
	return n
}
