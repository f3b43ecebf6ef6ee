package server

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// RunPodSandbox creates the pod's namespaces, files and network.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	if req.GetConfig() == nil {
		return nil, fmt.Errorf("config: required: %w", errdefs.ErrInvalidArgument)
	}
	handler, err := s.handler(req.GetRuntimeHandler())
	if err != nil {
		return nil, err
	}
	id, err := s.sandboxes.Run(ctx, req.GetConfig(), handler.Name)
	if err != nil {
		return nil, err
	}
	if err := s.startInfra(ctx, id); err != nil {
		return nil, err
	}
	md := req.GetConfig().GetMetadata()
	klog.InfoS("Pod sandbox running", "podSandboxID", id, "pod", md.GetNamespace()+"/"+md.GetName(), "attempt", md.GetAttempt())
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: id}, nil
}

// startInfra gives a pod that shares one PID namespace its pause process and
// pins that namespace; on failure the whole sandbox is removed again.
//
// Concurrent RunPodSandbox calls for one pod all get its id from
// sandboxes.Run; the per-sandbox lock makes the first start the pause
// process and the others find it pinned.
func (s *Server) startInfra(ctx context.Context, id string) error {
	defer s.infra.lock(id)()
	sb, err := s.sandboxes.Get(id)
	if err != nil {
		return err
	}
	rec := sb.Record()
	if !rec.SharesPID() || rec.PIDPinned {
		return nil
	}
	pid, err := s.containers.StartInfra(ctx, sandboxInfo(rec))
	if err == nil {
		err = s.sandboxes.PinPID(id, pid)
	}
	if err != nil {
		cleanup := context.WithoutCancel(ctx)
		if rerr := errors.Join(s.containers.RemoveAll(cleanup, id), s.sandboxes.Remove(cleanup, id)); rerr != nil {
			return fmt.Errorf("%w (removing the sandbox failed too: %v)", err, rerr)
		}
		return err
	}
	return nil
}

// keyedMutex is a mutex per key; entries live while someone holds or waits.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu      sync.Mutex
	waiters int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.waiters++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.waiters--; e.waiters == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
