package server

import (
	"context"
	"maps"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Reasons reported in Status conditions, as kubelet shows them on the node.
const (
	reasonNetworkNotReady = "NetworkPluginNotReady"
	reasonHandlerBroken   = "RuntimeHandlerUnavailable"
)

// Status reports runtime and network readiness, the runtime handlers and,
// when verbose, the effective configuration. Answered from memory: kubelet
// calls it every few seconds.
func (s *Server) Status(_ context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	resp := &runtimeapi.StatusResponse{
		Status: &runtimeapi.RuntimeStatus{Conditions: []*runtimeapi.RuntimeCondition{
			s.runtimeCondition(), s.networkCondition(),
		}},
		RuntimeHandlers: s.runtimeHandlers(),
		// Supplemental groups Merge and Strict are honoured (oci/spec).
		Features: &runtimeapi.RuntimeFeatures{SupplementalGroupsPolicy: true},
	}
	if req.GetVerbose() {
		resp.Info = maps.Clone(s.info)
		resp.Info["podCIDR"] = s.node.PodCIDR()
	}
	return resp, nil
}

// runtimeCondition is ready when the default handler can run containers.
func (s *Server) runtimeCondition() *runtimeapi.RuntimeCondition {
	c := &runtimeapi.RuntimeCondition{Type: runtimeapi.RuntimeReady, Status: true}
	if len(s.handlers) > 0 && s.handlers[0].Err != nil {
		c.Status = false
		c.Reason = reasonHandlerBroken
		c.Message = s.handlers[0].Err.Error()
	}
	return c
}

func (s *Server) networkCondition() *runtimeapi.RuntimeCondition {
	ready, msg := s.network.Ready()
	c := &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: ready}
	if !ready {
		c.Reason = reasonNetworkNotReady
		c.Message = "Network plugin returns error: " + msg
	}
	return c
}

// runtimeHandlers lists the handlers that can run containers; the default one
// is also listed under the empty name, as CRI asks.
func (s *Server) runtimeHandlers() []*runtimeapi.RuntimeHandler {
	var out []*runtimeapi.RuntimeHandler
	for i, h := range s.handlers {
		if h.Err != nil {
			continue
		}
		f := &runtimeapi.RuntimeHandlerFeatures{
			RecursiveReadOnlyMounts: h.Features.RecursiveReadOnlyMounts,
			UserNamespaces:          h.Features.UserNamespaces,
		}
		if i == 0 {
			out = append(out, &runtimeapi.RuntimeHandler{Name: "", Features: f})
		}
		out = append(out, &runtimeapi.RuntimeHandler{Name: h.Name, Features: f})
	}
	return out
}
