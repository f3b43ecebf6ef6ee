package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// CheckpointContainer checkpoints a running container into a tar at
// location, with CRIU; refused with CRIU's reason where it cannot run.
func (s *Server) CheckpointContainer(ctx context.Context, req *runtimeapi.CheckpointContainerRequest) (*runtimeapi.CheckpointContainerResponse, error) {
	if err := s.containers.CheckpointContainer(ctx, req.GetContainerId(), req.GetLocation()); err != nil {
		return nil, err
	}
	return &runtimeapi.CheckpointContainerResponse{}, nil
}

// CheckpointPod checkpoints a pod's containers into output_path.
func (s *Server) CheckpointPod(ctx context.Context, req *runtimeapi.CheckpointPodRequest) (*runtimeapi.CheckpointPodResponse, error) {
	sb, err := s.sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if err := s.containers.CheckpointPod(ctx, sb.Record().ID, req.GetOutputPath()); err != nil {
		return nil, err
	}
	return &runtimeapi.CheckpointPodResponse{}, nil
}

// RestorePod restores a checkpointed pod.
func (s *Server) RestorePod(ctx context.Context, req *runtimeapi.RestorePodRequest) (*runtimeapi.RestorePodResponse, error) {
	if err := s.containers.RestorePod(ctx, req.GetCheckpointPath()); err != nil {
		return nil, err
	}
	return &runtimeapi.RestorePodResponse{}, nil
}
