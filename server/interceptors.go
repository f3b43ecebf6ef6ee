package server

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/containerd/errdefs/pkg/errgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	crierrors "k8s.io/cri-api/pkg/errors"
	"k8s.io/klog/v2"
)

// UnaryInterceptor maps domain errors to status codes, logs the call and turns
// a panic into codes.Internal so the daemon keeps serving.
func UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = panicError(info.FullMethod, r)
		}
		err = toStatus(err)
		logCall(info.FullMethod, time.Since(start), err)
	}()
	return handler(ctx, req)
}

// StreamInterceptor is UnaryInterceptor for server-streaming RPCs.
func StreamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	start := time.Now()
	defer func() {
		if r := recover(); r != nil {
			err = panicError(info.FullMethod, r)
		}
		err = toStatus(err)
		logCall(info.FullMethod, time.Since(start), err)
	}()
	return handler(srv, ss)
}

func panicError(method string, r any) error {
	klog.ErrorS(fmt.Errorf("%v", r), "Panic in RPC handler", "method", method, "stack", string(debug.Stack()))
	return status.Errorf(codes.Internal, "%s: internal error: %v", path.Base(method), r)
}

// toStatus maps an error to a gRPC status exactly once. Errors that carry no
// errdefs class are internal faults: Unknown is never returned on purpose.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	// kubelet recognises a registry outage only by the "RegistryUnavailable"
	// message prefix on a status with code Unknown (cri-client's
	// pullImageV1): the one place Unknown is returned on purpose.
	if errors.Is(err, crierrors.ErrRegistryUnavailable) {
		return status.Error(codes.Unknown, err.Error())
	}
	mapped := errgrpc.ToGRPC(err)
	if st, ok := status.FromError(mapped); ok && st.Code() != codes.Unknown {
		return mapped
	}
	return status.Error(codes.Internal, err.Error())
}

// logCall logs state-changing RPCs at Info and the read-only ones kubelet
// repeats every second at V(4).
func logCall(method string, d time.Duration, err error) {
	name := path.Base(method)
	level := klog.Level(0)
	if readOnly(name) {
		level = 4
	}
	if err != nil {
		klog.V(level).InfoS("RPC failed", "method", name, "duration", d, "code", status.Code(err).String(), "err", err)
		return
	}
	klog.V(level).InfoS("RPC done", "method", name, "duration", d)
}

func readOnly(name string) bool {
	for _, p := range []string{"List", "Stream", "Version", "Status", "ImageStatus", "PodSandboxStatus", "ContainerStatus", "ImageFsInfo", "RuntimeConfig", "GetContainerEvents"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return strings.HasSuffix(name, "Stats")
}
