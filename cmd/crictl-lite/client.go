package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	criclient "k8s.io/cri-client/pkg"

	"github.com/nodeagent/nodeagent/internal/debugapi"
)

// reachable fails early, with a one-line hint, when a unix socket is missing.
func (g *globals) reachable() (string, error) {
	ep := g.resolveEndpoint()
	if !strings.Contains(ep, "://") {
		ep = "unix://" + ep
	}
	if path, ok := strings.CutPrefix(ep, "unix://"); ok {
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("cannot reach %s: is the daemon running? (%v)", ep, errors.Unwrap(err))
		}
	}
	return ep, nil
}

func (g *globals) images(ctx context.Context) (internalapi.ImageManagerService, error) {
	ep, err := g.reachable()
	if err != nil {
		return nil, err
	}
	return criclient.NewRemoteImageServiceBuilder().
		WithEndpoint(ep).
		WithConnectionTimeout(g.timeout).
		WithTracerProvider(nil).
		Build(ctx)
}

// debug connects to nodeagent's debug service. Other runtimes answer its
// calls with Unimplemented (see isUnimplemented).
func (g *globals) debug() (*debugapi.Client, func(), error) {
	ep, err := g.reachable()
	if err != nil {
		return nil, nil, err
	}
	conn, err := grpc.NewClient(ep, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	return debugapi.NewClient(conn), func() { conn.Close() }, nil
}

func isUnimplemented(err error) bool { return status.Code(err) == codes.Unimplemented }

// resolvePod finds one pod by id, unique id prefix, name or namespace/name.
func resolvePod(ctx context.Context, rt internalapi.RuntimeService, arg string) (*runtimeapi.PodSandbox, error) {
	pods, err := rt.ListPodSandbox(ctx, nil)
	if err != nil {
		return nil, err
	}
	i, err := pick("pod", arg, podCandidates(pods))
	if err != nil {
		return nil, err
	}
	return pods[i], nil
}

// resolveContainer finds one container by id, unique id prefix, name,
// pod/name or namespace/pod/name.
func resolveContainer(ctx context.Context, rt internalapi.RuntimeService, arg string) (*runtimeapi.Container, error) {
	ctrs, err := rt.ListContainers(ctx, nil)
	if err != nil {
		return nil, err
	}
	pods, err := rt.ListPodSandbox(ctx, nil)
	if err != nil {
		return nil, err
	}
	i, err := pick("container", arg, containerCandidates(ctrs, pods))
	if err != nil {
		return nil, err
	}
	return ctrs[i], nil
}

// resolveImage finds one image by reference (as the runtime resolves it),
// tag, digest, id or unique id prefix.
func resolveImage(ctx context.Context, is internalapi.ImageManagerService, arg string) (*runtimeapi.Image, error) {
	if st, err := is.ImageStatus(ctx, &runtimeapi.ImageSpec{Image: arg}, false); err == nil && st.GetImage() != nil {
		return st.GetImage(), nil
	}
	images, err := is.ListImages(ctx, nil)
	if err != nil {
		return nil, err
	}
	i, err := pick("image", arg, imageCandidates(images))
	if err != nil {
		return nil, err
	}
	return images[i], nil
}
