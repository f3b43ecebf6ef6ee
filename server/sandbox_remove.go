package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// RemovePodSandbox removes the pod and everything it owns. Idempotent: an
// unknown or already removed sandbox is success.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	id, err := s.resolveSandbox(req.GetPodSandboxId())
	if err != nil || id == "" {
		return nil, err
	}
	if err := s.containers.RemoveAll(ctx, id); err != nil {
		return nil, err
	}
	if err := s.sandboxes.Remove(ctx, id); err != nil {
		return nil, err
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}
