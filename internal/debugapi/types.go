package debugapi

import "time"

// PullProgressRequest asks for the pulls in flight.
type PullProgressRequest struct{}

// PullProgressResponse lists the pulls in flight, oldest first.
type PullProgressResponse struct {
	Pulls []Pull `json:"pulls"`
}

// Pull is one image pull in flight.
type Pull struct {
	Ref     string    `json:"ref"`
	Started time.Time `json:"started"`
	Layers  []Layer   `json:"layers"`
}

// Layer is one layer of a pull. State is waiting, downloading, done, exists
// or failed.
type Layer struct {
	Digest string `json:"digest"`
	Total  int64  `json:"total"` // compressed bytes
	Done   int64  `json:"done"`  // compressed bytes received
	State  string `json:"state"`
}

// CallHistoryRequest names a pod by sandbox id, or by "namespace/name" for
// RunPodSandbox calls that never produced an id.
type CallHistoryRequest struct {
	Pod string `json:"pod"`
}

// CallHistoryResponse lists the pod's recent CRI calls, oldest first.
type CallHistoryResponse struct {
	Calls []Call `json:"calls"`
}

// Call is one recorded CRI call.
type Call struct {
	Method   string        `json:"method"` // short name, e.g. "StartContainer"
	Time     time.Time     `json:"time"`
	Duration time.Duration `json:"duration"`
	Code     string        `json:"code"` // gRPC code name, "OK" on success
	Error    string        `json:"error,omitempty"`
	// Container is the container_id of the request, if any.
	Container string `json:"container,omitempty"`
}

// OwnedRequest asks what the daemon's records own.
type OwnedRequest struct{}

// OwnedResponse is what the daemon's records own on the host. Anything of
// ours (under Root or State, named by our ids) that is not listed is a leak.
type OwnedResponse struct {
	Root         string `json:"root"`
	State        string `json:"state"`
	CgroupDriver string `json:"cgroupDriver"`
	// CNICacheDir holds libcni's cached results of our attachments.
	CNICacheDir string            `json:"cniCacheDir"`
	Sandboxes   []OwnedSandbox    `json:"sandboxes"`
	Containers  []OwnedContainer  `json:"containers"`
	Handlers    []OwnedHandler    `json:"handlers"`
	Networks    []string          `json:"networks"` // CNI network names we attach to
	Bridges     []string          `json:"bridges"`  // bridges named by our CNI configs
	Extra       map[string]string `json:"extra,omitempty"`
}

// OwnedSandbox is one sandbox record's footprint.
type OwnedSandbox struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Namespace    string   `json:"namespace"`
	State        string   `json:"state"`
	NSDir        string   `json:"nsDir"`           // namespace pins
	NetNS        string   `json:"netns,omitempty"` // "" for host network
	Dir          string   `json:"dir"`             // hostname, hosts, resolv.conf, shm
	ShimDir      string   `json:"shimDir"`
	InfraDir     string   `json:"infraDir,omitempty"`
	CgroupParent string   `json:"cgroupParent,omitempty"`
	Network      string   `json:"network,omitempty"` // CNI network name
	IPs          []string `json:"ips,omitempty"`
	// HostInterfaces are host-side interfaces named in the CNI result.
	HostInterfaces []string `json:"hostInterfaces,omitempty"`
}

// OwnedContainer is one container record's footprint.
type OwnedContainer struct {
	ID          string `json:"id"`
	SandboxID   string `json:"sandboxId"`
	Handler     string `json:"handler"`
	Dir         string `json:"dir"` // bundle: config.json, rootfs, upper, work
	CgroupsPath string `json:"cgroupsPath,omitempty"`
}

// OwnedHandler is a runtime handler and its runc/crun --root.
type OwnedHandler struct {
	Name string `json:"name"`
	Path string `json:"path"`
	Root string `json:"root"`
}

// GoroutinesRequest asks for a goroutine dump.
type GoroutinesRequest struct{}

// GoroutinesResponse is runtime/pprof's goroutine profile at debug=2.
type GoroutinesResponse struct {
	Dump string `json:"dump"`
}

// ProfileRequest asks for a pprof profile: "cpu" (sampled for Seconds) or a
// runtime/pprof profile name ("heap", "allocs", "mutex", "block", ...).
type ProfileRequest struct {
	Kind    string
	Seconds int
}

// ProfileResponse is the profile in pprof's protobuf format, for
// `go tool pprof`.
type ProfileResponse struct {
	Data []byte
}
