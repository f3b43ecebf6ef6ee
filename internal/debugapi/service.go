package debugapi

import (
	"context"

	"google.golang.org/grpc"
)

// ServiceName is the gRPC service name of the debug service.
const ServiceName = "nodeagent.debug.v1.Debug"

// Server is what the daemon implements.
type Server interface {
	PullProgress(context.Context, *PullProgressRequest) (*PullProgressResponse, error)
	CallHistory(context.Context, *CallHistoryRequest) (*CallHistoryResponse, error)
	Owned(context.Context, *OwnedRequest) (*OwnedResponse, error)
	Goroutines(context.Context, *GoroutinesRequest) (*GoroutinesResponse, error)
	Profile(context.Context, *ProfileRequest) (*ProfileResponse, error)
}

// Register adds the debug service to g.
func Register(g *grpc.Server, s Server) { g.RegisterService(&serviceDesc, s) }

// handler adapts one typed method to grpc.MethodDesc's handler, honouring
// the server's interceptor chain as generated code does.
func handler[Req, Resp any](name string, call func(Server, context.Context, *Req) (*Resp, error)) grpc.MethodDesc {
	return grpc.MethodDesc{
		MethodName: name,
		Handler: func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			req := new(Req)
			if err := dec(req); err != nil {
				return nil, err
			}
			if ic == nil {
				return call(srv.(Server), ctx, req)
			}
			info := &grpc.UnaryServerInfo{Server: srv, FullMethod: "/" + ServiceName + "/" + name}
			return ic(ctx, req, info, func(ctx context.Context, r any) (any, error) {
				return call(srv.(Server), ctx, r.(*Req))
			})
		},
	}
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: ServiceName,
	HandlerType: (*Server)(nil),
	Methods: []grpc.MethodDesc{
		handler("PullProgress", Server.PullProgress),
		handler("CallHistory", Server.CallHistory),
		handler("Owned", Server.Owned),
		handler("Goroutines", Server.Goroutines),
		handler("Profile", Server.Profile),
	},
	Metadata: "nodeagent/debug.json",
}

// Client calls the debug service over an existing connection.
type Client struct{ cc grpc.ClientConnInterface }

// NewClient returns a client of the debug service on cc.
func NewClient(cc grpc.ClientConnInterface) *Client { return &Client{cc: cc} }

func invoke[Resp any](ctx context.Context, c *Client, name string, req any) (*Resp, error) {
	out := new(Resp)
	err := c.cc.Invoke(ctx, "/"+ServiceName+"/"+name, req, out, grpc.ForceCodecV2(jsonCodec{}))
	return out, err
}

// PullProgress lists the pulls in flight.
func (c *Client) PullProgress(ctx context.Context) (*PullProgressResponse, error) {
	return invoke[PullProgressResponse](ctx, c, "PullProgress", &PullProgressRequest{})
}

// CallHistory lists a pod's recent CRI calls.
func (c *Client) CallHistory(ctx context.Context, pod string) (*CallHistoryResponse, error) {
	return invoke[CallHistoryResponse](ctx, c, "CallHistory", &CallHistoryRequest{Pod: pod})
}

// Owned lists what the daemon's records own.
func (c *Client) Owned(ctx context.Context) (*OwnedResponse, error) {
	return invoke[OwnedResponse](ctx, c, "Owned", &OwnedRequest{})
}

// Profile returns a pprof profile of the daemon.
func (c *Client) Profile(ctx context.Context, kind string, seconds int) (*ProfileResponse, error) {
	return invoke[ProfileResponse](ctx, c, "Profile", &ProfileRequest{Kind: kind, Seconds: seconds})
}

// Goroutines returns a goroutine dump of the daemon.
func (c *Client) Goroutines(ctx context.Context) (*GoroutinesResponse, error) {
	return invoke[GoroutinesResponse](ctx, c, "Goroutines", &GoroutinesRequest{})
}
