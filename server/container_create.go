package server

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/oci"
	"github.com/nodeagent/nodeagent/oci/spec"
	"github.com/nodeagent/nodeagent/sandbox"
)

// CreateContainer creates a container in a ready sandbox from a pulled image.
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	cfg := req.GetConfig()
	if cfg == nil {
		return nil, fmt.Errorf("config: required: %w", errdefs.ErrInvalidArgument)
	}
	if cfg.GetImage().GetImage() == "" {
		return nil, fmt.Errorf("config.image.image: required: %w", errdefs.ErrInvalidArgument)
	}
	sb, err := s.sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	rec := sb.Record()
	if rec.State != sandbox.StateReady {
		return nil, fmt.Errorf("pod sandbox %s is not ready: %w", rec.ID, errdefs.ErrFailedPrecondition)
	}
	img, err := s.images.Get(cfg.GetImage().GetImage())
	if err != nil {
		return nil, fmt.Errorf("config.image %q: %w", cfg.GetImage().GetImage(), err)
	}
	id, err := s.containers.Create(ctx, oci.CreateRequest{
		Sandbox: sandboxInfo(rec),
		Config:  cfg,
		Image:   oci.Image{ID: img.ID, Ref: cfg.GetImage().GetImage(), Config: img.Config.Config},
	})
	if err != nil {
		return nil, err
	}
	klog.InfoS("Container created", "containerID", id, "podSandboxID", rec.ID, "name", cfg.GetMetadata().GetName(), "image", img.ID)
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

// sandboxInfo is what a container takes from its pod: namespaces to join
// and the files to bind.
func sandboxInfo(r sandbox.Record) oci.SandboxInfo {
	var ns []specs.LinuxNamespace
	for typ, path := range r.Namespaces() {
		ns = append(ns, specs.LinuxNamespace{Type: oci.NamespaceType(typ), Path: path})
	}
	f := r.Files()
	return oci.SandboxInfo{
		ID: r.ID, Config: r.Config, Handler: r.RuntimeHandler, Namespaces: ns,
		Files: spec.SandboxFiles{Hosts: f.Hosts, Resolv: f.Resolv, Hostname: f.Hostname, Shm: f.Shm},
	}
}
