package server

import (
	"maps"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/cni"
	"github.com/nodeagent/nodeagent/imagesvc"
	"github.com/nodeagent/nodeagent/internal/metrics"
	"github.com/nodeagent/nodeagent/internal/store"
	"github.com/nodeagent/nodeagent/oci"
	"github.com/nodeagent/nodeagent/sandbox"
)

// Server implements the CRI RuntimeService and ImageService. RPCs not built yet
// fall through to the embedded Unimplemented servers, which answer
// codes.Unimplemented: kubelet's fallbacks key on it.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	network    *cni.Manager
	handlers   []oci.Handler
	node       *nodeConfig
	info       map[string]string
	sandboxes  *sandbox.Manager
	images     *imagesvc.Service
	containers *oci.Manager
	metrics    *metrics.Metrics
	// stream serves exec/attach/port-forward URLs; set by StartStreaming.
	stream *streamServer
}

// Options are the domain managers the server calls.
type Options struct {
	Network      *cni.Manager
	Sandboxes    *sandbox.Manager
	Images       *imagesvc.Service
	Containers   *oci.Manager
	Metrics      *metrics.Metrics
	Handlers     []oci.Handler
	DB           *store.DB
	CgroupDriver string // "systemd" or "cgroupfs", already resolved
	// Info is static verbose information for Status (e.g. the effective config).
	Info map[string]string
}

// New returns a Server over the given domain managers.
func New(o Options) (*Server, error) {
	node, err := loadNodeConfig(o.DB, o.CgroupDriver)
	if err != nil {
		return nil, err
	}
	info := maps.Clone(o.Info)
	if info == nil {
		info = map[string]string{}
	}
	info["handlers"] = handlersJSON(o.Handlers)
	return &Server{network: o.Network, handlers: o.Handlers, node: node, info: info, sandboxes: o.Sandboxes, images: o.Images, containers: o.Containers, metrics: o.Metrics}, nil
}

// Register adds both CRI services to g.
func (s *Server) Register(g *grpc.Server) {
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
}
