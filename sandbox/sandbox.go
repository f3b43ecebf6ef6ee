package sandbox

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/nsutil"

	"github.com/nodeagent/nodeagent/internal/podnet"
)

// SharesPID reports whether the pod's containers share one PID namespace
// (namespace_options.pid POD), which needs an infra process.
func (r Record) SharesPID() bool {
	return nsOptions(r.Config).GetPid() == runtimeapi.NamespaceMode_POD
}

// State is a sandbox's lifecycle state.
//
//	RunPodSandbox
//	     |
//	     v            StopPodSandbox           RemovePodSandbox
//	+---------+      +------------+           +-----------+
//	|  READY  | ---> |  NOTREADY  | --------> | (deleted) |
//	+---------+      +------------+           +-----------+
//	                       ^
//	                       | a Run that failed and could not be fully
//	                       | undone, or that a crash interrupted: Stop,
//	                       | Remove and restart recovery finish it.
type State string

// Sandbox states, as CRI names them.
const (
	StateReady    State = "READY"
	StateNotReady State = "NOTREADY"
)

// Record is what is persisted of a sandbox. Every change goes through
// Sandbox.update: persisted first, then published.
type Record struct {
	ID             string                       `json:"id"`
	Config         *runtimeapi.PodSandboxConfig `json:"config"`
	RuntimeHandler string                       `json:"runtimeHandler"`
	CreatedAt      int64                        `json:"createdAt"` // unix nanoseconds
	State          State                        `json:"state"`
	// NSDir holds the namespace pins; NetNS is "" for host-network pods.
	NSDir string `json:"nsDir"`
	NetNS string `json:"netns,omitempty"`
	// Dir holds hostname, hosts, resolv.conf and the /dev/shm mount.
	Dir string `json:"dir"`
	// Network is the stored CNI result; Network.Network is "" until ADD.
	Network podnet.Result `json:"network"`
	// Networked is set once CNI ADD has started, so DEL runs even when the
	// result never got stored.
	Networked bool `json:"networked,omitempty"`
	// PIDPinned: the pod shares one PID namespace, its infra process's,
	// pinned beside the others.
	PIDPinned bool `json:"pidPinned,omitempty"`
	// Message says why a sandbox is NOTREADY without a Stop.
	Message string `json:"message,omitempty"`
}

// Sandbox is a pod sandbox in memory. Readers get copies of its record.
type Sandbox struct {
	mu     sync.Mutex // serialises Stop/Remove of this sandbox
	recMu  sync.RWMutex
	record Record
}

// Record returns a copy of the sandbox's record (the config is shared and
// must not be modified).
func (s *Sandbox) Record() Record {
	s.recMu.RLock()
	defer s.recMu.RUnlock()
	return s.record
}

// update applies fn to a copy of the record, persists it with save, and only
// then publishes it.
func (s *Sandbox) update(save func(Record) error, fn func(*Record)) error {
	s.recMu.Lock()
	defer s.recMu.Unlock()
	r := s.record
	fn(&r)
	if err := save(r); err != nil {
		return err
	}
	s.record = r
	return nil
}

// Files are the per-pod files containers bind-mount; "" when not provided.
type Files struct {
	Hostname string
	Hosts    string
	Resolv   string
	Shm      string
}

// Files returns the host paths of the sandbox's files.
func (r Record) Files() Files {
	f := Files{
		Hostname: filepath.Join(r.Dir, "hostname"),
		Hosts:    filepath.Join(r.Dir, "hosts"),
		Shm:      filepath.Join(r.Dir, "shm"),
	}
	if r.hasResolv() {
		f.Resolv = filepath.Join(r.Dir, "resolv.conf")
	}
	if hostIPC(r.Config) {
		f.Shm = "/dev/shm"
	}
	return f
}

func (r Record) hasResolv() bool { return r.Config.GetDnsConfig() != nil || hostNetwork(r.Config) }

// Namespaces returns the pinned namespace paths by type ("net", "ipc", "uts").
func (r Record) Namespaces() map[string]string {
	ns := map[string]string{}
	for _, t := range pinTypes(r.Config) {
		ns[string(t)] = filepath.Join(r.NSDir, string(t))
	}
	if userns(r.Config) {
		ns["user"] = filepath.Join(r.NSDir, "user")
	}
	if r.PIDPinned {
		ns[string(nsutil.PID)] = filepath.Join(r.NSDir, string(nsutil.PID))
	}
	return ns
}

// CreatedTime returns when the sandbox was created.
func (r Record) CreatedTime() time.Time { return time.Unix(0, r.CreatedAt) }

// Info is the verbose status of a sandbox, for PodSandboxStatus.
func (r Record) Info() (string, error) {
	info := map[string]any{
		"netns":          r.NetNS,
		"namespaces":     r.Namespaces(),
		"runtimeHandler": r.RuntimeHandler,
		"network":        r.Network.Network,
		"cniResult":      r.Network.Raw,
		"files":          r.Files(),
	}
	b, err := json.Marshal(info)
	if err != nil {
		return "", fmt.Errorf("encode sandbox info: %w", err)
	}
	return string(b), nil
}

func nsOptions(c *runtimeapi.PodSandboxConfig) *runtimeapi.NamespaceOption {
	return c.GetLinux().GetSecurityContext().GetNamespaceOptions()
}

func hostNetwork(c *runtimeapi.PodSandboxConfig) bool {
	return nsOptions(c).GetNetwork() == runtimeapi.NamespaceMode_NODE
}

func hostIPC(c *runtimeapi.PodSandboxConfig) bool {
	return nsOptions(c).GetIpc() == runtimeapi.NamespaceMode_NODE
}

// userns reports whether the pod has its own user namespace.
// Absent options mean the host's (POD is the zero value of the mode).
func userns(c *runtimeapi.PodSandboxConfig) bool {
	u := nsOptions(c).GetUsernsOptions()
	return u != nil && u.GetMode() == runtimeapi.NamespaceMode_POD
}
