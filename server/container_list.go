package server

import (
	"context"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/oci"
)

// ListContainers lists containers from memory, filtered by id, sandbox id
// (or their prefixes), state and labels.
func (s *Server) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	return &runtimeapi.ListContainersResponse{Containers: s.listContainers(req.GetFilter())}, nil
}

// StreamContainers is ListContainers in batches.
func (s *Server) StreamContainers(req *runtimeapi.StreamContainersRequest, stream runtimeapi.RuntimeService_StreamContainersServer) error {
	return sendBatches(s.listContainers(req.GetFilter()), func(batch []*runtimeapi.Container) error {
		return stream.Send(&runtimeapi.StreamContainersResponse{Containers: batch})
	})
}

func (s *Server) listContainers(f *runtimeapi.ContainerFilter) []*runtimeapi.Container {
	var out []*runtimeapi.Container
	for _, r := range s.containers.List() {
		if containerMatches(r, f) {
			out = append(out, criContainer(r))
		}
	}
	return out
}

func criContainer(r oci.Record) *runtimeapi.Container {
	cfg := r.Config
	return &runtimeapi.Container{
		Id: r.ID, PodSandboxId: r.SandboxID, Metadata: cfg.GetMetadata(),
		Image:    &runtimeapi.ImageSpec{Image: r.ImageRef, Annotations: cfg.GetImage().GetAnnotations(), UserSpecifiedImage: cfg.GetImage().GetUserSpecifiedImage()},
		ImageRef: r.ImageID, ImageId: r.ImageID, State: containerState(r.State), CreatedAt: r.CreatedAt,
		Labels: cfg.GetLabels(), Annotations: cfg.GetAnnotations(),
	}
}

func containerMatches(r oci.Record, f *runtimeapi.ContainerFilter) bool {
	if f == nil {
		return true
	}
	if f.Id != "" && !strings.HasPrefix(r.ID, f.Id) {
		return false
	}
	if f.PodSandboxId != "" && !strings.HasPrefix(r.SandboxID, f.PodSandboxId) {
		return false
	}
	if f.State != nil && f.State.State != containerState(r.State) {
		return false
	}
	return labelsMatch(r.Config.GetLabels(), f.LabelSelector)
}
