package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/internal/store"
	"github.com/nodeagent/nodeagent/oci"
)

// RuntimeConfig reports the cgroup driver, so kubelet can match it.
func (s *Server) RuntimeConfig(context.Context, *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	driver := runtimeapi.CgroupDriver_CGROUPFS
	if s.node.cgroupDriver == "systemd" {
		driver = runtimeapi.CgroupDriver_SYSTEMD
	}
	return &runtimeapi.RuntimeConfigResponse{Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: driver}}, nil
}

// UpdateRuntimeConfig keeps the pod CIDR kubelet hands down. CRI lets a
// runtime ignore the other fields.
func (s *Server) UpdateRuntimeConfig(_ context.Context, req *runtimeapi.UpdateRuntimeConfigRequest) (*runtimeapi.UpdateRuntimeConfigResponse, error) {
	cidr := req.GetRuntimeConfig().GetNetworkConfig().GetPodCidr()
	if cidr == "" {
		return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
	}
	if err := s.node.SetPodCIDR(cidr); err != nil {
		return nil, err
	}
	klog.InfoS("Pod CIDR updated", "podCIDR", cidr)
	return &runtimeapi.UpdateRuntimeConfigResponse{}, nil
}

const (
	nodeBucket = "node"
	podCIDRKey = "podCIDR"
)

// nodeConfig is what kubelet tells the runtime about the node, persisted so it
// survives a restart.
type nodeConfig struct {
	db           *store.DB
	cgroupDriver string

	mu      sync.RWMutex
	podCIDR string
}

func loadNodeConfig(db *store.DB, cgroupDriver string) (*nodeConfig, error) {
	n := &nodeConfig{db: db, cgroupDriver: cgroupDriver}
	err := db.Get(nodeBucket, podCIDRKey, &n.podCIDR)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return nil, err
	}
	return n, nil
}

// PodCIDR returns the pod CIDR(s) last set, comma-separated for dual stack.
func (n *nodeConfig) PodCIDR() string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.podCIDR
}

// SetPodCIDR validates and persists the pod CIDR, then publishes it.
func (n *nodeConfig) SetPodCIDR(cidrs string) error {
	for _, c := range strings.Split(cidrs, ",") {
		if _, err := netip.ParsePrefix(c); err != nil {
			return fmt.Errorf("runtime_config.network_config.pod_cidr %q: %v: %w", cidrs, err, errdefs.ErrInvalidArgument)
		}
	}
	if err := n.db.Put(nodeBucket, podCIDRKey, cidrs); err != nil {
		return err
	}
	n.mu.Lock()
	n.podCIDR = cidrs
	n.mu.Unlock()
	return nil
}

func handlersJSON(hs []oci.Handler) string {
	type handler struct {
		Name     string       `json:"name"`
		Path     string       `json:"path"`
		Version  string       `json:"version,omitempty"`
		Error    string       `json:"error,omitempty"`
		Features oci.Features `json:"features"`
	}
	out := make([]handler, 0, len(hs))
	for _, h := range hs {
		e := handler{Name: h.Name, Path: h.Path, Version: h.Version, Features: h.Features}
		if h.Err != nil {
			e.Error = h.Err.Error()
		}
		out = append(out, e)
	}
	b, _ := json.Marshal(out)
	return string(b)
}
