package server

import (
	"context"
	"encoding/json"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/oci"
)

// ContainerStatus reports a container from memory; unknown is NotFound.
func (s *Server) ContainerStatus(_ context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.containers.Get(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	rec := c.Record()
	resp := &runtimeapi.ContainerStatusResponse{Status: containerStatus(rec)}
	if req.GetVerbose() {
		info, err := json.Marshal(map[string]any{
			"pid": rec.Pid, "sandboxID": rec.SandboxID, "bundle": rec.Dir, "runtimeHandler": rec.Handler,
		})
		if err != nil {
			return nil, fmt.Errorf("encode container info: %w", err)
		}
		resp.Info = map[string]string{"info": string(info)}
	}
	return resp, nil
}

func containerStatus(r oci.Record) *runtimeapi.ContainerStatus {
	cfg := r.Config
	return &runtimeapi.ContainerStatus{
		Id:          r.ID,
		Metadata:    cfg.GetMetadata(),
		State:       containerState(r.State),
		CreatedAt:   r.CreatedAt,
		StartedAt:   r.StartedAt,
		FinishedAt:  r.FinishedAt,
		ExitCode:    r.ExitCode,
		Image:       &runtimeapi.ImageSpec{Image: r.ImageRef, Annotations: cfg.GetImage().GetAnnotations(), UserSpecifiedImage: cfg.GetImage().GetUserSpecifiedImage()},
		ImageRef:    r.ImageID,
		ImageId:     r.ImageID,
		Reason:      r.Reason,
		Message:     r.Message,
		Labels:      cfg.GetLabels(),
		Annotations: cfg.GetAnnotations(),
		Mounts:      cfg.GetMounts(),
		LogPath:     r.LogPath,
		Resources:   &runtimeapi.ContainerResources{Linux: r.Resources},
		User: &runtimeapi.ContainerUser{Linux: &runtimeapi.LinuxContainerUser{
			Uid: int64(r.UID), Gid: int64(r.GID), SupplementalGroups: int64s(r.AdditionalGIDs),
		}},
		StopSignal: cfg.GetStopSignal(),
	}
}

func int64s(v []uint32) []int64 {
	out := make([]int64, len(v))
	for i, x := range v {
		out[i] = int64(x)
	}
	return out
}

func containerState(s oci.State) runtimeapi.ContainerState {
	switch s {
	case oci.StateCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case oci.StateRunning:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case oci.StateExited:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}
