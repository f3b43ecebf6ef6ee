package e2e

import (
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// TestHostileRequests: oversized or malformed names, labels, annotations and
// environments are refused as InvalidArgument naming the field, and leave
// nothing behind.
func TestHostileRequests(t *testing.T) {
	e := newPodEnv(t)
	ctx := framework.Ctx(t)
	big := strings.Repeat("x", 600<<10)
	pod := func(mut func(*runtimeapi.PodSandboxConfig)) *runtimeapi.PodSandboxConfig {
		c := e.d.PodConfig(t, "hostile")
		mut(c)
		return c
	}
	for _, tc := range []struct {
		name    string
		cfg     *runtimeapi.PodSandboxConfig
		mention string
	}{
		{"slash in name", pod(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Name = "../../etc" }), "metadata.name"},
		{"NUL in namespace", pod(func(c *runtimeapi.PodSandboxConfig) { c.Metadata.Namespace = "e2e\x00x" }), "metadata.namespace"},
		{"huge labels", pod(func(c *runtimeapi.PodSandboxConfig) { c.Labels = map[string]string{"big": big} }), "config.labels"},
		{"huge annotations", pod(func(c *runtimeapi.PodSandboxConfig) { c.Annotations = map[string]string{"big": big} }), "config.annotations"},
	} {
		t.Run("pod/"+tc.name, func(t *testing.T) {
			_, err := e.d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: tc.cfg})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("RunPodSandbox: %v, want InvalidArgument mentioning %q", err, tc.mention)
			}
		})
	}
	if pods := listPods(t, e.d); len(pods) != 1 {
		t.Errorf("refused pods left sandboxes: %v", pods)
	}

	ctr := func(name string, mut func(*runtimeapi.ContainerConfig)) *runtimeapi.ContainerConfig {
		c := &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name}, Command: []string{"true"}}
		mut(c)
		return c
	}
	for _, tc := range []struct {
		name    string
		cfg     *runtimeapi.ContainerConfig
		mention string
	}{
		{"slash in name", ctr("a/b", func(*runtimeapi.ContainerConfig) {}), "metadata.name"},
		{"newline in name", ctr("a\nb", func(*runtimeapi.ContainerConfig) {}), "metadata.name"},
		{"huge env", ctr("env", func(c *runtimeapi.ContainerConfig) {
			c.Envs = []*runtimeapi.KeyValue{{Key: "A", Value: []byte(big)}, {Key: "B", Value: []byte(big)}}
		}), "config.envs"},
		{"huge annotations", ctr("ann", func(c *runtimeapi.ContainerConfig) { c.Annotations = map[string]string{"big": big} }), "config.annotations"},
	} {
		t.Run("container/"+tc.name, func(t *testing.T) {
			_, err := e.tryCreate(t, tc.cfg)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("CreateContainer: %v, want InvalidArgument mentioning %q", err, tc.mention)
			}
		})
	}
	if ids := containerIDs(t, e.d); len(ids) != 0 {
		t.Errorf("refused containers left records: %v", ids)
	}
}

// TestConcurrentRunPodSandboxSameName: callers racing to create one pod all
// get the same sandbox, and only one exists.
func TestConcurrentRunPodSandboxSameName(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	framework.AddBridge(t, d)
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	cfg := d.PodConfig(t, "race")
	const n = 8
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			resp, err := d.Runtime.RunPodSandbox(framework.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
			ids[i], errs[i] = resp.GetPodSandboxId(), err
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Errorf("caller %d: id %q err %v; want %q like caller 0", i, ids[i], errs[i], ids[0])
		}
	}
	if pods := listPods(t, d); len(pods) != 1 {
		t.Errorf("%d sandboxes exist, want 1", len(pods))
	}
	stopRemovePod(t, d, ids[0])
}
