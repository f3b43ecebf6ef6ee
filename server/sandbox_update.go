package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// UpdatePodSandboxResources is kubelet telling the runtime a pod was resized.
// kubelet has already resized the pod cgroup itself (the runtime never
// resizes it), and nodeagent runs no pause container whose limits would need
// changing, so there is nothing to apply: the call succeeds for a known pod.
func (s *Server) UpdatePodSandboxResources(_ context.Context, req *runtimeapi.UpdatePodSandboxResourcesRequest) (*runtimeapi.UpdatePodSandboxResourcesResponse, error) {
	sb, err := s.sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	klog.InfoS("Pod sandbox resources updated", "podSandboxID", sb.Record().ID)
	return &runtimeapi.UpdatePodSandboxResourcesResponse{}, nil
}
