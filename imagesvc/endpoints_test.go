package imagesvc

import (
	"testing"
)

// TestMirrorURL pins containerd's mirror semantics: the mirror replaces the
// host, the repository path (with docker.io's library/) is kept.
func TestMirrorURL(t *testing.T) {
	for _, tc := range []struct {
		mirror, ref, want string
		bad               bool
	}{
		{"http://127.0.0.1:5000", "busybox", "http://127.0.0.1:5000/v2/library/busybox/manifests/latest", false},
		{"https://mirror.gcr.io", "docker.io/user/app:v1", "https://mirror.gcr.io/v2/user/app/manifests/v1", false},
		{"mirror.example.com", "registry.k8s.io/pause:3.10", "https://mirror.example.com/v2/pause/manifests/3.10", false},
		{"https://m.example.com/prefix/", "quay.io/org/app:1", "https://m.example.com/prefix/v2/org/app/manifests/1", false},
		{"https://m.example.com/custom/v2", "quay.io/org/app:1", "https://m.example.com/custom/v2/org/app/manifests/1", false},
		{"http://[::1]:5000", "localhost:5000/a/b:c", "http://[::1]:5000/v2/a/b/manifests/c", false},
		{"ftp://m.example.com", "busybox", "", true},
		{"https://user:pw@m.example.com", "busybox", "", true},
		{"https://m.example.com/?q=1", "busybox", "", true},
		{"http://", "busybox", "", true},
	} {
		base, err := mirrorBase(tc.mirror)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted", tc.mirror)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tc.mirror, err)
			continue
		}
		ref, err := ParseReference(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := apiURL(base, ref.Path, "manifests", ref.object()); got != tc.want {
			t.Errorf("%q + %q = %q, want %q", tc.mirror, tc.ref, got, tc.want)
		}
	}
}

func TestUpstreamURL(t *testing.T) {
	for _, tc := range []struct {
		domain string
		plain  bool
		want   string
	}{
		{"docker.io", false, "https://registry-1.docker.io/v2"},
		{"registry.k8s.io", false, "https://registry.k8s.io/v2"},
		{"localhost:5000", true, "http://localhost:5000/v2"},
	} {
		if got := upstreamBase(tc.domain, tc.plain).String(); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.domain, got, tc.want)
		}
	}
}
