package oci

import (
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// State is a container's lifecycle state.
//
//	CreateContainer     StartContainer        process exits /
//	      |           +-----------+          StopContainer
//	      v           |           v                |
//	 +---------+      |      +---------+           v         +----------+  RemoveContainer
//	 | CREATED | -----+      | RUNNING | ------------------> |  EXITED  | ---------------> (deleted)
//	 +---------+             +---------+                     +----------+
//	      |                                                        ^
//	      +---- StopContainer of a never-started container --------+
//
// A record whose shim is gone after a restart becomes EXITED with a reason.
type State string

// Container states, as CRI names them.
const (
	StateCreated State = "CREATED"
	StateRunning State = "RUNNING"
	StateExited  State = "EXITED"
)

// Record is what is persisted of a container; changes go through
// Container.update (persist, then publish).
type Record struct {
	ID        string                      `json:"id"`
	SandboxID string                      `json:"sandboxId"`
	Config    *runtimeapi.ContainerConfig `json:"config"`
	ImageID   string                      `json:"imageId"`
	ImageRef  string                      `json:"imageRef"` // as the user named it
	Handler   string                      `json:"handler"`
	State     State                       `json:"state"`
	CreatedAt int64                       `json:"createdAt"`
	StartedAt int64                       `json:"startedAt,omitempty"`
	// FinishedAt, ExitCode, Reason and Message are set when it exits.
	FinishedAt int64  `json:"finishedAt,omitempty"`
	ExitCode   int32  `json:"exitCode,omitempty"`
	Reason     string `json:"reason,omitempty"`
	Message    string `json:"message,omitempty"`
	Pid        int    `json:"pid,omitempty"`
	// Dir is the bundle: config.json, rootfs (mounted), upper and work.
	Dir     string `json:"dir"`
	LogPath string `json:"logPath,omitempty"`
	// StopSignal is resolved at create: config, image, SIGTERM.
	StopSignal int `json:"stopSignal"`
	// User is the identity applied, for ContainerStatus.
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGIDs []uint32 `json:"additionalGids,omitempty"`
	// Resources as last applied (create or UpdateContainerResources).
	Resources *runtimeapi.LinuxContainerResources `json:"resources,omitempty"`
	// CgroupsPath is the spec's cgroupsPath, where stats are read.
	CgroupsPath string `json:"cgroupsPath,omitempty"`
	// Creating is set until create finished: recovery removes such records.
	Creating bool `json:"creating,omitempty"`
}

// Container is a container in memory.
type Container struct {
	mu sync.Mutex // serialises Start/Stop/Remove of this container

	recMu  sync.RWMutex
	record Record
	// process is the spec's process, the template of ExecSync processes.
	process *specs.Process
	// exited is closed when the container is seen exited.
	exited chan struct{}
}

func newContainer(r Record, process *specs.Process) *Container {
	c := &Container{record: r, process: process, exited: make(chan struct{})}
	if r.State == StateExited {
		close(c.exited)
	}
	return c
}

// Record returns a copy of the record (Config is shared: read only).
func (c *Container) Record() Record {
	c.recMu.RLock()
	defer c.recMu.RUnlock()
	return c.record
}

// update applies fn to a copy of the record, persists it, then publishes it.
// It reports whether the container just became EXITED.
func (c *Container) update(save func(Record) error, fn func(*Record)) (bool, error) {
	c.recMu.Lock()
	defer c.recMu.Unlock()
	r := c.record
	fn(&r)
	if err := save(r); err != nil {
		return false, err
	}
	justExited := c.record.State != StateExited && r.State == StateExited
	c.record = r
	if justExited {
		close(c.exited)
	}
	return justExited, nil
}

func now() int64 { return time.Now().UnixNano() }
