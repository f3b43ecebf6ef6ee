package imagesvc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	crierrors "k8s.io/cri-api/pkg/errors"
)

// Errors are classified once, here, with errdefs classes the gRPC edge maps
// to codes. An unreachable registry also carries cri-api's
// ErrRegistryUnavailable, which kubelet reports as such.

func unavailable(what string, err error) error {
	return fmt.Errorf("%s: %w: %w: %w", what, err, crierrors.ErrRegistryUnavailable, errdefs.ErrUnavailable)
}

// classifyTransport classifies an error of an HTTP round trip: a cancelled
// pull stays a cancellation; an HTTP status from the token exchange is a
// status; anything else (DNS, refused connection, TLS, timeouts) means the
// registry could not be reached.
func classifyTransport(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, context.Cause(ctx))
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		return fmt.Errorf("%s: %w", what, statusClass(terr.StatusCode, err))
	}
	return unavailable(what, err)
}

// classifyStatus turns a non-2xx response into an error, quoting the start
// of the registry's explanation.
func classifyStatus(what string, resp *http.Response) error {
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	err := fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(msg)))
	return fmt.Errorf("%s: %w", what, statusClass(resp.StatusCode, err))
}

func statusClass(code int, err error) error {
	switch {
	case code == http.StatusNotFound:
		return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
	case code == http.StatusUnauthorized:
		return fmt.Errorf("%w: %w", err, errdefs.ErrUnauthenticated)
	case code == http.StatusForbidden:
		return fmt.Errorf("%w: %w", err, errdefs.ErrPermissionDenied)
	case code == http.StatusTooManyRequests || code >= 500:
		return fmt.Errorf("%w: %w: %w", err, crierrors.ErrRegistryUnavailable, errdefs.ErrUnavailable)
	}
	return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
}

// invalid is hostile or broken registry content.
func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}

// diskFull classifies a local write that failed for want of space or quota
// as ResourceExhausted: the node, not the image or the registry, is at fault,
// and the failed pull has given back what it wrote.
func diskFull(err error) error {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return fmt.Errorf("%w: %w", err, errdefs.ErrResourceExhausted)
	}
	return err
}
