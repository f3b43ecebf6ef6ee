package server

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/imagesvc"
)

// PullImage pulls an image (once, however many ask at the same time) and
// returns its id, the config digest.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("image.image: required: %w", errdefs.ErrInvalidArgument)
	}
	start := time.Now()
	img, err := s.images.Pull(ctx, ref, pullAuth(req.GetAuth()))
	if err != nil {
		return nil, err
	}
	if s.metrics != nil {
		s.metrics.ObservePull(img.Size, time.Since(start))
	}
	klog.InfoS("Image pulled", "image", ref, "imageID", img.ID, "size", img.Size)
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}

func pullAuth(a *runtimeapi.AuthConfig) *imagesvc.Auth {
	if a == nil {
		return nil
	}
	return &imagesvc.Auth{
		Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken, ServerAddress: a.ServerAddress,
	}
}
