package server

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/oci"
	"github.com/nodeagent/nodeagent/oci/podmetrics"
	"github.com/nodeagent/nodeagent/oci/stats"
	"github.com/nodeagent/nodeagent/sandbox"
)

// ListMetricDescriptors names every metric ListPodSandboxMetrics reports.
// kubelet asks once, when its /metrics/cadvisor collector starts.
func (s *Server) ListMetricDescriptors(context.Context, *runtimeapi.ListMetricDescriptorsRequest) (*runtimeapi.ListMetricDescriptorsResponse, error) {
	return &runtimeapi.ListMetricDescriptorsResponse{Descriptors: podmetrics.Descriptors()}, nil
}

// ListPodSandboxMetrics reports the cAdvisor-named metrics of every ready pod
// and its running containers, from the sampler's memory and the pods'
// interface counters.
func (s *Server) ListPodSandboxMetrics(context.Context, *runtimeapi.ListPodSandboxMetricsRequest) (*runtimeapi.ListPodSandboxMetricsResponse, error) {
	return &runtimeapi.ListPodSandboxMetricsResponse{PodMetrics: s.listPodMetrics()}, nil
}

// StreamPodSandboxMetrics is ListPodSandboxMetrics in batches.
func (s *Server) StreamPodSandboxMetrics(_ *runtimeapi.StreamPodSandboxMetricsRequest, stream runtimeapi.RuntimeService_StreamPodSandboxMetricsServer) error {
	return sendBatches(s.listPodMetrics(), func(batch []*runtimeapi.PodSandboxMetrics) error {
		return stream.Send(&runtimeapi.StreamPodSandboxMetricsResponse{PodSandboxMetrics: batch})
	})
}

func (s *Server) listPodMetrics() []*runtimeapi.PodSandboxMetrics {
	now := time.Now()
	fs := map[string]*stats.FilesystemSize{} // statfs once per mount per call
	var out []*runtimeapi.PodSandboxMetrics
	for _, r := range s.sandboxes.List() {
		if r.State != sandbox.StateReady {
			continue
		}
		out = append(out, podmetrics.Build(s.podMetricsInput(r, fs), now))
	}
	return out
}

func (s *Server) podMetricsInput(r sandbox.Record, fs map[string]*stats.FilesystemSize) podmetrics.Pod {
	md := r.Config.GetMetadata()
	parent := r.Config.GetLinux().GetCgroupParent()
	p := podmetrics.Pod{
		ID:     r.ID,
		Labels: podmetrics.Labels{ID: cgroupID(parent), Namespace: md.GetNamespace(), Pod: md.GetName()},
	}
	if u := s.containers.PodUsage(r.ID, parent); u.HasSample {
		p.Cgroup = &u.Sample
	}
	if r.NetNS != "" {
		if ifs, err := stats.NetworkStats(r.NetNS); err == nil {
			for _, i := range ifs {
				if i.Name != "lo" {
					p.Network = append(p.Network, i)
				}
			}
		}
	}
	for _, cr := range s.containers.ListSandbox(r.ID) {
		if cr.State == oci.StateRunning {
			p.Containers = append(p.Containers, s.containerMetricsInput(cr, p.Labels, fs))
		}
	}
	return p
}

func (s *Server) containerMetricsInput(r oci.Record, pod podmetrics.Labels, fs map[string]*stats.FilesystemSize) podmetrics.Container {
	c := podmetrics.Container{
		ID: r.ID,
		Labels: podmetrics.Labels{
			Container: r.Config.GetMetadata().GetName(), ID: cgroupID(r.CgroupsPath), Image: r.ImageRef,
			Name: r.ID, Namespace: pod.Namespace, Pod: pod.Pod,
		},
		Resources: r.Resources,
	}
	if r.StartedAt != 0 {
		c.StartedAt = time.Unix(0, r.StartedAt)
	}
	u := s.containers.Usage(r)
	if u.HasSample {
		c.Cgroup = &u.Sample
	}
	if u.HasWritable {
		size, ok := fs[u.WritableMount]
		if !ok {
			if sz, err := stats.Filesystem(u.WritableMount); err == nil {
				size = &sz
			}
			fs[u.WritableMount] = size
		}
		w := &podmetrics.Filesystem{Device: u.WritableMount, UsedBytes: u.WritableBytes}
		if size != nil {
			w.CapacityBytes, w.TotalInodes, w.FreeInodes = size.CapacityBytes, size.Inodes, size.FreeInodes
		}
		c.Writable = w
	}
	return c
}

// cgroupID is cAdvisor's id label: the cgroup's path below the hierarchy
// root. A path that does not parse is shown as given.
func cgroupID(cgroupsPath string) string {
	if cgroupsPath == "" {
		return ""
	}
	if p, err := stats.ExpandPath(cgroupsPath); err == nil {
		return p
	}
	return cgroupsPath
}
