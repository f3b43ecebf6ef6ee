package debugapi

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

type fakeServer struct{ seen string }

func (f *fakeServer) PullProgress(context.Context, *PullProgressRequest) (*PullProgressResponse, error) {
	return &PullProgressResponse{Pulls: []Pull{{Ref: "r", Layers: []Layer{{Digest: "d", Total: 2, Done: 1, State: "downloading"}}}}}, nil
}

func (f *fakeServer) CallHistory(_ context.Context, r *CallHistoryRequest) (*CallHistoryResponse, error) {
	if r.Pod == "" {
		return nil, status.Error(codes.InvalidArgument, "pod is empty")
	}
	return &CallHistoryResponse{Calls: []Call{{Method: "StartContainer", Code: "OK", Duration: time.Millisecond, Container: r.Pod}}}, nil
}

func (f *fakeServer) Owned(context.Context, *OwnedRequest) (*OwnedResponse, error) {
	return &OwnedResponse{State: "/run/x", Sandboxes: []OwnedSandbox{{ID: "s1", IPs: []string{"10.0.0.2"}}}}, nil
}

func (f *fakeServer) Profile(_ context.Context, r *ProfileRequest) (*ProfileResponse, error) {
	return &ProfileResponse{Data: []byte(r.Kind)}, nil
}

func (f *fakeServer) Goroutines(context.Context, *GoroutinesRequest) (*GoroutinesResponse, error) {
	return &GoroutinesResponse{Dump: "goroutine 1"}, nil
}

// TestRoundTrip runs the service over a real unix socket with an
// interceptor, as the daemon serves it next to CRI.
func TestRoundTrip(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var methods []string
	g := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		methods = append(methods, info.FullMethod)
		return h(ctx, req)
	}))
	Register(g, &fakeServer{})
	go g.Serve(lis)
	defer g.Stop()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := NewClient(conn)
	ctx := context.Background()

	pp, err := c.PullProgress(ctx)
	if err != nil || len(pp.Pulls) != 1 || pp.Pulls[0].Layers[0].Done != 1 {
		t.Errorf("PullProgress = %+v, %v", pp, err)
	}
	h, err := c.CallHistory(ctx, "pod1")
	if err != nil || len(h.Calls) != 1 || h.Calls[0].Container != "pod1" || h.Calls[0].Duration != time.Millisecond {
		t.Errorf("CallHistory = %+v, %v", h, err)
	}
	if _, err := c.CallHistory(ctx, ""); status.Code(err) != codes.InvalidArgument {
		t.Errorf("CallHistory(\"\") error = %v, want InvalidArgument", err)
	}
	o, err := c.Owned(ctx)
	if err != nil || o.State != "/run/x" || o.Sandboxes[0].IPs[0] != "10.0.0.2" {
		t.Errorf("Owned = %+v, %v", o, err)
	}
	if pr, err := c.Profile(ctx, "heap", 0); err != nil || string(pr.Data) != "heap" {
		t.Errorf("Profile = %+v, %v", pr, err)
	}
	gr, err := c.Goroutines(ctx)
	if err != nil || gr.Dump != "goroutine 1" {
		t.Errorf("Goroutines = %+v, %v", gr, err)
	}
	if len(methods) != 6 || methods[0] != "/nodeagent.debug.v1.Debug/PullProgress" {
		t.Errorf("interceptor saw %v", methods)
	}
}
