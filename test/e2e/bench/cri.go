package main

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// dial connects to a CRI endpoint: unix:///path, or a bare path.
func dial(endpoint string) (*grpc.ClientConn, error) {
	if strings.HasPrefix(endpoint, "/") {
		endpoint = "unix://" + endpoint
	}
	if !strings.HasPrefix(endpoint, "unix://") {
		return nil, fmt.Errorf("endpoint %q: only unix:// sockets are supported", endpoint)
	}
	// ListContainers with hundreds of containers outgrows gRPC's 4 MiB
	// default; kubelet allows 16 MiB too.
	return grpc.NewClient(endpoint,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(16<<20)))
}

// podTracker remembers every pod sandbox the run created and has not yet
// removed, for the final cleanup.
type podTracker struct {
	mu  sync.Mutex
	ids map[string]struct{}
}

func newPodTracker() *podTracker { return &podTracker{ids: map[string]struct{}{}} }

func (t *podTracker) add(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ids[id] = struct{}{}
}

func (t *podTracker) remove(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.ids, id)
}

func (t *podTracker) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.ids)
}

func (t *podTracker) all() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]string, 0, len(t.ids))
	for id := range t.ids {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// cgroupParent is the run's own cgroup parent: kubelet creates one per QoS
// class and pod; the run uses one for all its pods so that cleanup (kubelet's
// job, not the runtime's) can remove it.
func (b *bench) cgroupParent() string { return "/nodeagent-bench-" + b.runID }

// podConfig describes a pod as kubelet would, with a name and uid unique
// to this run.
func (b *bench) podConfig(tag string) *runtimeapi.PodSandboxConfig {
	b.nextID++
	name := fmt.Sprintf("bench-%s-%s-%d", b.runID, tag, b.nextID)
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{
			Name:      name,
			Namespace: "nodeagent-bench",
			Uid:       fmt.Sprintf("%s-%s-%08d", b.runID, randomHex(8), b.nextID),
		},
		Hostname:     name,
		LogDirectory: filepath.Join(b.logDir, name),
		Labels:       map[string]string{"nodeagent-bench": b.runID},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: b.cgroupParent(),
			// What kubelet sends for a pod without shareProcessNamespace:
			// every container gets its own PID namespace.
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			},
		},
	}
}

func (b *bench) containerConfig(name string) *runtimeapi.ContainerConfig {
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: name},
		Image:    &runtimeapi.ImageSpec{Image: b.o.busybox},
		Command:  []string{"sleep", "3600"},
		LogPath:  name + ".log",
		Labels:   map[string]string{"nodeagent-bench": b.runID},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
		}},
	}
}

// rpc bounds one CRI call.
func (b *bench) rpc(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.o.rpcTimeout)
}

// runPod runs a pod sandbox and tracks it for cleanup.
func (b *bench) runPod(ctx context.Context, cfg *runtimeapi.PodSandboxConfig) (string, error) {
	cctx, cancel := b.rpc(ctx)
	defer cancel()
	resp, err := b.rt.RunPodSandbox(cctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return "", fmt.Errorf("RunPodSandbox %s: %w", cfg.GetMetadata().GetName(), err)
	}
	b.pods.add(resp.GetPodSandboxId())
	return resp.GetPodSandboxId(), nil
}

// removePod stops and removes a pod sandbox, each call bounded by timeout.
// Stop first, as kubelet does: a runtime may refuse to remove a ready pod.
func (b *bench) removePod(ctx context.Context, id string, timeout time.Duration) error {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := b.rt.StopPodSandbox(sctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil && !isNotFound(err) {
		return fmt.Errorf("StopPodSandbox: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := b.rt.RemovePodSandbox(rctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil && !isNotFound(err) {
		return fmt.Errorf("RemovePodSandbox: %w", err)
	}
	b.pods.remove(id)
	return nil
}

func (b *bench) createContainer(ctx context.Context, podID string, podCfg *runtimeapi.PodSandboxConfig, name string) (string, error) {
	cctx, cancel := b.rpc(ctx)
	defer cancel()
	resp, err := b.rt.CreateContainer(cctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId:  podID,
		Config:        b.containerConfig(name),
		SandboxConfig: podCfg,
	})
	if err != nil {
		return "", fmt.Errorf("CreateContainer %s: %w", name, err)
	}
	return resp.GetContainerId(), nil
}

func (b *bench) startContainer(ctx context.Context, id string) error {
	cctx, cancel := b.rpc(ctx)
	defer cancel()
	if _, err := b.rt.StartContainer(cctx, &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		return fmt.Errorf("StartContainer %s: %w", id, err)
	}
	return nil
}

// startPod is a pod start as kubelet does it for a one-container pod:
// RunPodSandbox, CreateContainer, StartContainer. It reports the time of the
// sandbox alone and of the whole.
func (b *bench) startPod(ctx context.Context, tag string) (id string, sandbox, total time.Duration, err error) {
	cfg := b.podConfig(tag)
	t0 := time.Now()
	if id, err = b.runPod(ctx, cfg); err != nil {
		return "", 0, 0, err
	}
	sandbox = time.Since(t0)
	cid, err := b.createContainer(ctx, id, cfg, "sleep")
	if err != nil {
		return id, 0, 0, err
	}
	if err := b.startContainer(ctx, cid); err != nil {
		return id, 0, 0, err
	}
	return id, sandbox, time.Since(t0), nil
}

func isNotFound(err error) bool { return status.Code(err) == codes.NotFound }
