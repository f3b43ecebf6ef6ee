package server

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/sandbox"
)

// PortForward checks that the sandbox is ready and returns a single-use URL
// of the streaming server, which connects to the ports the client asks for.
func (s *Server) PortForward(_ context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	st, err := s.streamer()
	if err != nil {
		return nil, err
	}
	sb, err := s.sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	rec := sb.Record()
	if rec.State != sandbox.StateReady {
		return nil, fmt.Errorf("pod sandbox %s is %s: %w", rec.ID, rec.State, errdefs.ErrFailedPrecondition)
	}
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("port: %d is not a port: %w", p, errdefs.ErrInvalidArgument)
		}
	}
	// The URL names the full id: the request may carry a prefix.
	fwd := &runtimeapi.PortForwardRequest{PodSandboxId: rec.ID, Port: req.GetPort()}
	return st.GetPortForward(fwd)
}
