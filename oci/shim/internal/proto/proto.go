// Package proto is the wire protocol between the shim and its client: net/rpc
// (gob) request and reply types, and errors that keep their errdefs class.
// net/rpc wants exported types; they live here to keep them out of the shim
// package's API.
package proto

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/errdefs"
)

// ServiceName is the net/rpc service the shim registers.
const ServiceName = "Shim"

// Status is a container's lifecycle state as the shim sees it.
//
//	Create ──> created ──Start──> running ──(init exits)──> stopped
//	              └──────────(init exits)──────────────────────┘
//	Delete from any state forgets the container.
type Status string

// The container statuses.
const (
	StatusCreated Status = "created"
	StatusRunning Status = "running"
	StatusStopped Status = "stopped"
)

// Exit reasons, as kubelet expects them in ContainerStatus.reason.
const (
	ReasonCompleted = "Completed"
	ReasonError     = "Error"
	ReasonOOMKilled = "OOMKilled"
)

// State is one container as the shim knows it. It is also the exit record
// written to disk and the payload of events.
type State struct {
	ID        string    `json:"id"`
	Pid       int       `json:"pid"`
	Status    Status    `json:"status"`
	ExitCode  int32     `json:"exitCode"`
	CreatedAt time.Time `json:"createdAt"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	ExitedAt  time.Time `json:"exitedAt,omitzero"`
	// Reason is Completed, Error or OOMKilled once stopped.
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
}

// CreateRequest asks the shim to create a container.
type CreateRequest struct {
	ID string
	// Bundle holds config.json; the rootfs is already mounted by the caller.
	Bundle string
	// LogPath is the CRI log file; empty discards the output. Its directory
	// must exist.
	LogPath string
	// Stdin keeps a pipe to the container's stdin open (for attach); without
	// it stdin is /dev/null. Tty gives the container a pty instead of pipes.
	Stdin, StdinOnce, Tty bool
}

// The request and reply types of the wire protocol. Process specs travel as
// JSON: gob drops pointers to zero values, and an empty capability set is
// not the same as none.
type (
	IDRequest   struct{ ID string }
	Empty       struct{}
	CreateReply struct{ Pid int }
	StartReply  struct{ Pid int }
	KillRequest struct {
		ID     string
		Signal int
		All    bool
	}
	StatesReply     struct{ States []State }
	ExecSyncRequest struct {
		ID      string
		Process []byte
		Timeout time.Duration
	}
	ExecSyncReply struct {
		Stdout, Stderr []byte
		ExitCode       int32
	}
	WaitEventRequest struct{ After uint64 }
	Event            struct {
		Seq   uint64
		State State
	}
	WaitEventReply struct{ Events []Event }
)

// errorClasses name the errdefs classes that cross the wire; net/rpc carries
// only an error's text, so the shim prefixes the class name and the client
// restores it.
var errorClasses = []struct {
	name  string
	class error
}{
	{"not-found", errdefs.ErrNotFound},
	{"already-exists", errdefs.ErrAlreadyExists},
	{"invalid-argument", errdefs.ErrInvalidArgument},
	{"failed-precondition", errdefs.ErrFailedPrecondition},
	{"unavailable", errdefs.ErrUnavailable},
	{"deadline-exceeded", context.DeadlineExceeded},
	{"canceled", context.Canceled},
	{"internal", errdefs.ErrInternal},
}

const classSep = "\x1f"

// EncodeError turns err into the text net/rpc sends.
func EncodeError(err error) error {
	if err == nil {
		return nil
	}
	for _, c := range errorClasses {
		if errors.Is(err, c.class) {
			return errors.New(c.name + classSep + err.Error())
		}
	}
	return err
}

// remoteError is an error the shim returned, with its class restored.
type remoteError struct {
	msg   string
	class error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.class }

// DecodeError restores the class of an error text from EncodeError.
func DecodeError(text string) error {
	name, msg, ok := strings.Cut(text, classSep)
	if !ok {
		return fmt.Errorf("shim: %s", text)
	}
	for _, c := range errorClasses {
		if c.name == name {
			return &remoteError{msg: "shim: " + msg, class: c.class}
		}
	}
	return fmt.Errorf("shim: %s", msg)
}
