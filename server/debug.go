package server

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"runtime/pprof"
	"time"

	"github.com/containerd/errdefs"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/callhistory"
	"github.com/nodeagent/nodeagent/internal/debugapi"
)

// History bounds: a node runs at most a few hundred pods, and the last 64
// calls of a pod cover a crash loop's recent restarts.
const (
	historyPerPod = 64
	historyPods   = 1024
)

// DebugOptions are what the debug service reports beyond the managers.
type DebugOptions struct {
	Root, State  string
	CNICacheDir  string
	CgroupDriver string
}

// Debug serves nodeagent's debug service (internal/debugapi) on the CRI
// socket, and records each pod's recent CRI calls for it.
type Debug struct {
	srv     *Server
	opts    DebugOptions
	history *callhistory.Recorder
}

// NewDebug returns the debug service over s.
func (s *Server) NewDebug(o DebugOptions) *Debug {
	return &Debug{srv: s, opts: o, history: callhistory.New(historyPerPod, historyPods)}
}

// Register adds the debug service to g.
func (d *Debug) Register(g *grpc.Server) { debugapi.Register(g, d) }

// RecordCalls is a unary interceptor that files each CRI call naming a pod
// (pod_sandbox_id, or container_id through its container's sandbox) in that
// pod's history. It must run outermost, so it sees the mapped status code.
func (d *Debug) RecordCalls(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	method := path.Base(info.FullMethod)
	// Successful Status/List calls are kubelet's relist noise; only their
	// failures say something about a pod.
	if err == nil && readOnly(method) {
		return resp, err
	}
	keys, ctr := d.podKeys(req, resp)
	if len(keys) == 0 {
		return resp, err
	}
	c := callhistory.Call{
		Method: method, Container: ctr, Time: start,
		Duration: time.Since(start), Code: status.Code(err).String(),
	}
	if err != nil {
		c.Error = status.Convert(err).Message()
	}
	for _, k := range keys {
		d.history.Add(k, c)
	}
	return resp, err
}

// podKeys finds the pod a call is about. RunPodSandbox is also filed under
// "namespace/name", so a pod that never got an id still has a history.
func (d *Debug) podKeys(req, resp any) (keys []string, container string) {
	if r, ok := req.(interface {
		GetConfig() *runtimeapi.PodSandboxConfig
	}); ok {
		md := r.GetConfig().GetMetadata()
		keys = append(keys, md.GetNamespace()+"/"+md.GetName())
		if id, ok := resp.(interface{ GetPodSandboxId() string }); ok && id.GetPodSandboxId() != "" {
			keys = append(keys, id.GetPodSandboxId())
		}
		return keys, ""
	}
	if r, ok := req.(interface{ GetPodSandboxId() string }); ok && r.GetPodSandboxId() != "" {
		keys = append(keys, r.GetPodSandboxId())
	}
	if r, ok := req.(interface{ GetContainerId() string }); ok && r.GetContainerId() != "" {
		container = r.GetContainerId()
		if len(keys) == 0 {
			if c, err := d.srv.containers.Get(container); err == nil {
				keys = append(keys, c.Record().SandboxID)
			}
		}
	}
	if r, ok := resp.(interface{ GetContainerId() string }); ok && container == "" {
		container = r.GetContainerId() // CreateContainer's new id
	}
	return keys, container
}

// PullProgress lists the pulls in flight with per-layer progress.
func (d *Debug) PullProgress(context.Context, *debugapi.PullProgressRequest) (*debugapi.PullProgressResponse, error) {
	resp := &debugapi.PullProgressResponse{}
	for _, p := range d.srv.images.Progress() {
		pull := debugapi.Pull{Ref: p.Ref, Started: p.Started}
		for _, l := range p.Layers {
			pull.Layers = append(pull.Layers, debugapi.Layer{Digest: l.Digest, Total: l.Total, Done: l.Done, State: string(l.State)})
		}
		resp.Pulls = append(resp.Pulls, pull)
	}
	return resp, nil
}

// CallHistory returns a pod's recent CRI calls, oldest first. An unknown pod
// has an empty history, not an error: the history is memory only and starts
// empty at each daemon start.
func (d *Debug) CallHistory(_ context.Context, req *debugapi.CallHistoryRequest) (*debugapi.CallHistoryResponse, error) {
	resp := &debugapi.CallHistoryResponse{}
	for _, c := range d.history.Calls(req.Pod) {
		resp.Calls = append(resp.Calls, debugapi.Call{
			Method: c.Method, Time: c.Time, Duration: c.Duration, Code: c.Code, Error: c.Error, Container: c.Container,
		})
	}
	return resp, nil
}

// Goroutines dumps every goroutine's stack, as /debug/pprof/goroutine?debug=2.
func (d *Debug) Goroutines(context.Context, *debugapi.GoroutinesRequest) (*debugapi.GoroutinesResponse, error) {
	var b bytes.Buffer
	if err := pprof.Lookup("goroutine").WriteTo(&b, 2); err != nil {
		return nil, err
	}
	return &debugapi.GoroutinesResponse{Dump: b.String()}, nil
}

// maxProfileSeconds bounds a CPU profile so a forgotten request cannot hold
// the profiler (one at a time per process) for long.
const maxProfileSeconds = 60

// Profile writes a pprof profile: a CPU profile sampled for the asked
// seconds, or a named runtime profile (heap, allocs, mutex, block, ...).
func (d *Debug) Profile(ctx context.Context, req *debugapi.ProfileRequest) (*debugapi.ProfileResponse, error) {
	var b bytes.Buffer
	if req.Kind != "cpu" {
		p := pprof.Lookup(req.Kind)
		if p == nil {
			return nil, fmt.Errorf("profile kind %q: unknown (cpu, heap, allocs, mutex, block, goroutine, threadcreate): %w", req.Kind, errdefs.ErrInvalidArgument)
		}
		if err := p.WriteTo(&b, 0); err != nil {
			return nil, err
		}
		return &debugapi.ProfileResponse{Data: b.Bytes()}, nil
	}
	secs := min(max(req.Seconds, 1), maxProfileSeconds)
	if err := pprof.StartCPUProfile(&b); err != nil {
		return nil, fmt.Errorf("cpu profile: %v: %w", err, errdefs.ErrFailedPrecondition)
	}
	select {
	case <-time.After(time.Duration(secs) * time.Second):
	case <-ctx.Done():
	}
	pprof.StopCPUProfile()
	return &debugapi.ProfileResponse{Data: b.Bytes()}, nil
}
