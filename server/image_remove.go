package server

import (
	"context"
	"fmt"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// RemoveImage removes an image and the blobs and snapshots no other image
// uses. CRI: removing an absent image succeeds.
func (s *Server) RemoveImage(_ context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, fmt.Errorf("image.image: required: %w", errdefs.ErrInvalidArgument)
	}
	// A container's rootfs is an overlay of the image's snapshots: removing
	// them under it would break it.
	if img, err := s.images.Get(ref); err == nil {
		for _, c := range s.containers.List() {
			if c.ImageID == img.ID {
				return nil, fmt.Errorf("image %s is in use by container %s: %w", ref, c.ID, errdefs.ErrFailedPrecondition)
			}
		}
	}
	if err := s.images.Remove(ref); err != nil {
		return nil, err
	}
	klog.InfoS("Image removed", "image", ref)
	return &runtimeapi.RemoveImageResponse{}, nil
}
