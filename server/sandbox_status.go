package server

import (
	"context"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/sandbox"
)

// PodSandboxStatus reports a sandbox from memory; unknown is NotFound.
func (s *Server) PodSandboxStatus(_ context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	rec := sb.Record()
	resp := &runtimeapi.PodSandboxStatusResponse{
		Status:             sandboxStatus(rec),
		ContainersStatuses: s.sandboxContainerStatuses(rec.ID),
		Timestamp:          time.Now().UnixNano(),
	}
	if req.GetVerbose() {
		info, err := rec.Info()
		if err != nil {
			return nil, err
		}
		resp.Info = map[string]string{"info": info}
	}
	return resp, nil
}

func sandboxStatus(r sandbox.Record) *runtimeapi.PodSandboxStatus {
	c := r.Config
	st := &runtimeapi.PodSandboxStatus{
		Id:             r.ID,
		Metadata:       c.GetMetadata(),
		State:          sandboxState(r.State),
		CreatedAt:      r.CreatedAt,
		Linux:          &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: c.GetLinux().GetSecurityContext().GetNamespaceOptions()}},
		Labels:         c.GetLabels(),
		Annotations:    c.GetAnnotations(),
		RuntimeHandler: r.RuntimeHandler,
	}
	// IPs are reported while the pod is on its network.
	if ips := r.Network.IPs; len(ips) > 0 && r.State == sandbox.StateReady {
		st.Network = &runtimeapi.PodSandboxNetworkStatus{Ip: ips[0]}
		for _, ip := range ips[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtimeapi.PodIP{Ip: ip})
		}
	}
	return st
}

func sandboxState(s sandbox.State) runtimeapi.PodSandboxState {
	if s == sandbox.StateReady {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}
