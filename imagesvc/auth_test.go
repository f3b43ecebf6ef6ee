package imagesvc

import (
	"context"
	"encoding/base64"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// tokenRegistry is a registry behind Docker's token auth: /v2/ wants a
// bearer token that /token hands out for user:secret.
func tokenRegistry(t *testing.T) (pushHost, pullHost string) {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	open := httptest.NewServer(reg)
	t.Cleanup(open.Close)
	var guarded *httptest.Server
	guarded = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			if u, p, ok := r.BasicAuth(); !ok || u != "user" || p != "secret" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			io.WriteString(w, `{"token":"tok-123"}`)
			return
		}
		if r.Header.Get("Authorization") != "Bearer tok-123" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+guarded.URL+`/token",service="test",scope="repository:app:pull"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(guarded.Close)
	return strings.TrimPrefix(open.URL, "http://"), strings.TrimPrefix(guarded.URL, "http://")
}

func TestPullWithAuth(t *testing.T) {
	pushHost, host := tokenRegistry(t)
	tr := &testRegistry{host: pushHost}
	tr.push(t, "app:1", testImage(t, v1.Config{}, testLayer(t, nil, tfile("a", "a"))))
	ref := host + "/app:1"
	for _, tc := range []struct {
		name string
		auth *Auth
		ok   bool
	}{
		{"anonymous", nil, false},
		{"wrong password", &Auth{Username: "user", Password: "nope"}, false},
		{"username and password", &Auth{Username: "user", Password: "secret"}, true},
		{"auth string", &Auth{Auth: base64.StdEncoding.EncodeToString([]byte("user:secret"))}, true},
		{"registry token", &Auth{RegistryToken: "tok-123"}, true},
		{"credential for another host", &Auth{Username: "user", Password: "secret", ServerAddress: "other.example.com"}, false},
		{"credential for this host", &Auth{Username: "user", Password: "secret", ServerAddress: "http://" + host}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := testService(t, Config{}, host)
			_, err := s.Pull(context.Background(), ref, tc.auth)
			if tc.ok && err != nil {
				t.Fatal(err)
			}
			if !tc.ok && !errdefs.IsUnauthorized(err) {
				t.Fatalf("err = %v, want unauthenticated", err)
			}
		})
	}
	// Credentials from the config serve pulls that carry none.
	s, _ := testService(t, Config{Registries: map[string]Registry{host: {PlainHTTP: true, Auth: &Auth{Username: "user", Password: "secret"}}}})
	if _, err := s.Pull(context.Background(), ref, nil); err != nil {
		t.Fatal(err)
	}
}

func TestParseChallenge(t *testing.T) {
	ch, ok := parseChallenge([]string{`Negotiate`, `Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"`})
	if !ok || ch.Scheme != "bearer" || ch.Parameters["realm"] != "https://auth.example.com/token" ||
		ch.Parameters["service"] != "registry.example.com" || ch.Parameters["scope"] != "repository:a/b:pull,push" {
		t.Fatalf("got %+v", ch)
	}
	ch, ok = parseChallenge([]string{`Basic realm=registry`})
	if !ok || ch.Scheme != "basic" || ch.Parameters["realm"] != "registry" {
		t.Fatalf("got %+v", ch)
	}
	if _, ok := parseChallenge([]string{`Negotiate abc`}); ok {
		t.Fatal("accepted an unknown scheme")
	}
}
