package shim

import "github.com/nodeagent/nodeagent/oci/shim/internal/proto"

// State is one container as the shim knows it; see proto.State.
type State = proto.State

// Status is a container's lifecycle state; see proto.Status.
type Status = proto.Status

// CreateRequest asks the shim to create a container; see proto.CreateRequest.
type CreateRequest = proto.CreateRequest

// The container statuses.
const (
	StatusCreated = proto.StatusCreated
	StatusRunning = proto.StatusRunning
	StatusStopped = proto.StatusStopped
)

// Exit reasons, as kubelet expects them in ContainerStatus.reason.
const (
	ReasonCompleted = proto.ReasonCompleted
	ReasonError     = proto.ReasonError
	ReasonOOMKilled = proto.ReasonOOMKilled
)
