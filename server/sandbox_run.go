package server

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// RunPodSandbox creates the pod's namespaces, files, network and, for a pod
// that shares one PID namespace, its pause process.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	if req.GetConfig() == nil {
		return nil, fmt.Errorf("config: required: %w", errdefs.ErrInvalidArgument)
	}
	handler, err := s.containers.Handler(req.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	id, err := s.sandboxes.Run(ctx, req.GetConfig(), handler.Name)
	if err != nil {
		return nil, err
	}
	md := req.GetConfig().GetMetadata()
	klog.InfoS("Pod sandbox running", "podSandboxID", id, "pod", md.GetNamespace()+"/"+md.GetName(), "attempt", md.GetAttempt())
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}
