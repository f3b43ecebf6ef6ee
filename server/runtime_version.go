package server

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/version"
)

// kubeAPIVersion is the version of the kubelet runtime API, fixed by CRI.
const kubeAPIVersion = "0.1.0"

// Version returns the runtime name, version and CRI API version.
func (s *Server) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version:           kubeAPIVersion,
		RuntimeName:       version.Name,
		RuntimeVersion:    version.Version,
		RuntimeApiVersion: "v1",
	}, nil
}
