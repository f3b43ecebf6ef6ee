package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	if err := s.containers.Start(ctx, req.GetContainerId()); err != nil {
		return nil, err
	}
	klog.InfoS("Container started", "containerID", req.GetContainerId())
	return &runtimeapi.StartContainerResponse{}, nil
}
