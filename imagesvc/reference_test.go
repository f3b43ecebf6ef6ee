package imagesvc

import (
	"errors"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
)

func TestParseReference(t *testing.T) {
	const d = "sha256:0000000000000000000000000000000000000000000000000000000000000001"
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"busybox", "docker.io/library/busybox:latest", nil},
		{"busybox:1.36", "docker.io/library/busybox:1.36", nil},
		{"library/busybox", "docker.io/library/busybox:latest", nil},
		{"docker.io/busybox", "docker.io/library/busybox:latest", nil},
		{"index.docker.io/library/busybox:1", "docker.io/library/busybox:1", nil},
		{"user/app:v1", "docker.io/user/app:v1", nil},
		{"registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10", nil},
		{"localhost/app", "localhost/app:latest", nil},
		{"localhost:5000/a/b/c:t", "localhost:5000/a/b/c:t", nil},
		{"127.0.0.1:5000/app", "127.0.0.1:5000/app:latest", nil},
		{"[::1]:5000/app", "[::1]:5000/app:latest", nil},
		{"busybox@" + d, "docker.io/library/busybox@" + d, nil},
		{"busybox:1.36@" + d, "docker.io/library/busybox@" + d, nil},
		{"Example.com/app", "Example.com/app:latest", nil},
		{"a__b/c-d.e_f", "docker.io/a__b/c-d.e_f:latest", nil},
		{"", "", errdefs.ErrInvalidArgument},
		{"BusyBox", "", errdefs.ErrInvalidArgument},
		{"example.com/App", "", errdefs.ErrInvalidArgument},
		{"busybox:", "", errdefs.ErrInvalidArgument},
		{"busybox:-tag", "", errdefs.ErrInvalidArgument},
		{"busybox@sha256:abc", "", errdefs.ErrInvalidArgument},
		{"busybox@sha256:" + strings.Repeat("A", 64), "", errdefs.ErrNotImplemented},
		{"busybox@sha512:" + strings.Repeat("a", 128), "", errdefs.ErrNotImplemented},
		{strings.Repeat("a", 64), "", errdefs.ErrInvalidArgument},
		{"a//b", "", errdefs.ErrInvalidArgument},
		{"a/b/", "", errdefs.ErrInvalidArgument},
		{"-a/b", "", errdefs.ErrInvalidArgument},
		{"host:port/app", "", errdefs.ErrInvalidArgument},
		{strings.Repeat("a/", 130) + "a", "", errdefs.ErrInvalidArgument},
	} {
		r, err := ParseReference(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%q: err = %v, want %v", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || r.String() != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.in, r.String(), err, tc.want)
		}
	}
}
