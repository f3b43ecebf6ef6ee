package server

import (
	"fmt"

	"github.com/containerd/errdefs"

	"github.com/nodeagent/nodeagent/oci"
)

// handler resolves a RuntimeClass handler name ("" = the default). A handler
// that cannot run here is refused with the reason found at start.
func (s *Server) handler(name string) (oci.Handler, error) {
	for i, h := range s.handlers {
		if h.Name != name && !(name == "" && i == 0) {
			continue
		}
		if h.Err != nil {
			return oci.Handler{}, fmt.Errorf("runtime_handler %q cannot run on this host: %v: %w", h.Name, h.Err, errdefs.ErrFailedPrecondition)
		}
		return h, nil
	}
	return oci.Handler{}, fmt.Errorf("runtime_handler %q: no such handler configured: %w", name, errdefs.ErrInvalidArgument)
}
