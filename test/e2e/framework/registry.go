package framework

import (
	"context"
	"sync"
	"testing"

	testregistry "github.com/nodeagent/nodeagent/test/e2e/registry"
)

// UpstreamHosts are the registries tests and critest name; every one is sent
// to the offline test registry through --registry-mirror.
var UpstreamHosts = []string{
	"registry.k8s.io", "k8s.gcr.io", "gcr.io", "docker.io", "registry-1.docker.io",
	"public.ecr.aws", "quay.io", "ghcr.io", "mcr.microsoft.com",
}

var (
	registryOnce sync.Once
	registry     *testregistry.Registry
	registryErr  error
)

// Registry returns the offline test registry, started once per test process
// (it serves read-only content, so tests share it).
func Registry(t testing.TB) *testregistry.Registry {
	t.Helper()
	registryOnce.Do(func() {
		registry, registryErr = testregistry.Start(context.Background(), testregistry.Options{})
	})
	if registryErr != nil {
		t.Fatalf("start test registry: %v", registryErr)
	}
	return registry
}

// MirrorArgs are the daemon flags that send every upstream host to the test
// registry.
func MirrorArgs(t testing.TB) []string {
	url := Registry(t).URL()
	var args []string
	for _, h := range UpstreamHosts {
		args = append(args, "--registry-mirror", h+"="+url)
	}
	return args
}
