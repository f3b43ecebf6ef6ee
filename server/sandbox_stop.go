package server

import (
	"errors"

	"context"
	"github.com/containerd/errdefs"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// StopPodSandbox stops the pod's processes, then releases its network.
// Idempotent: an unknown or already stopped sandbox is success.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	// Containers are killed at once: CRI asks for forcible termination.
	id, err := s.resolveSandbox(req.GetPodSandboxId())
	if err != nil || id == "" {
		return nil, err
	}
	if err := s.containers.StopAll(ctx, id, 0); err != nil {
		return nil, err
	}
	if err := s.containers.StopInfra(ctx, id); err != nil {
		return nil, err
	}
	if err := s.sandboxes.Stop(ctx, id); err != nil {
		return nil, err
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// resolveSandbox turns an id or unique prefix into the full id; an unknown
// sandbox is "" without error, as Stop and Remove must succeed for it.
func (s *Server) resolveSandbox(id string) (string, error) {
	sb, err := s.sandboxes.Get(id)
	if errors.Is(err, errdefs.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return sb.Record().ID, nil
}
