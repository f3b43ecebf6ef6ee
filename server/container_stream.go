package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Exec checks that the container runs and returns a single-use URL of the
// streaming server, where the command runs once a client connects. Bad
// input fails here rather than on the URL: an unknown container is
// NotFound, one that does not run FailedPrecondition.
func (s *Server) Exec(_ context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	st, err := s.streamer()
	if err != nil {
		return nil, err
	}
	if err := s.containers.CheckExec(req.GetContainerId()); err != nil {
		return nil, err
	}
	return st.GetExec(req)
}

// Attach is Exec for the container's init; tty must match the container's.
func (s *Server) Attach(_ context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	st, err := s.streamer()
	if err != nil {
		return nil, err
	}
	if err := s.containers.CheckAttach(req.GetContainerId(), req.GetTty()); err != nil {
		return nil, err
	}
	return st.GetAttach(req)
}
