package server

import (
	"errors"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/oci"
)

// GetContainerEvents streams container lifecycle events, each with the
// container's and its sandbox's full status, until the client goes away.
func (s *Server) GetContainerEvents(_ *runtimeapi.GetEventsRequest, stream runtimeapi.RuntimeService_GetContainerEventsServer) error {
	events, cancel := s.containers.Events().Subscribe()
	defer cancel()
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case e, ok := <-events:
			if !ok {
				return errors.New("event stream fell behind and was dropped; relist")
			}
			if err := stream.Send(s.eventResponse(e)); err != nil {
				return err
			}
		}
	}
}

func (s *Server) eventResponse(e oci.Event) *runtimeapi.ContainerEventResponse {
	resp := &runtimeapi.ContainerEventResponse{
		ContainerId:        e.ContainerID,
		ContainerEventType: eventType(e.Type),
		CreatedAt:          e.At,
	}
	if sb, err := s.sandboxes.Get(e.SandboxID); err == nil {
		resp.PodSandboxStatus = sandboxStatus(sb.Record())
		resp.ContainersStatuses = s.sandboxContainerStatuses(e.SandboxID)
	}
	return resp
}

// sandboxContainerStatuses are the statuses of every container of a pod.
func (s *Server) sandboxContainerStatuses(sandboxID string) []*runtimeapi.ContainerStatus {
	var out []*runtimeapi.ContainerStatus
	for _, r := range s.containers.ListSandbox(sandboxID) {
		out = append(out, containerStatus(r))
	}
	return out
}

func eventType(t oci.EventType) runtimeapi.ContainerEventType {
	switch t {
	case oci.EventCreated:
		return runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT
	case oci.EventStarted:
		return runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT
	case oci.EventStopped:
		return runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT
	}
	return runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT
}
