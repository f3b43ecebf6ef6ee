package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/nsutil"
	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// benchFileMiB is the size of the file the port-forward benchmark fetches.
const benchFileMiB = 64

// BenchmarkPortForward fetches a file from busybox httpd in a pod, one new
// connection per fetch: first directly from inside the pod's network
// namespace (the floor: no forward at all), then through `crictl
// port-forward` over each transport. Each sub-benchmark reports MB/s.
func BenchmarkPortForward(b *testing.B) {
	requireCrictlB(b)
	d := framework.StartDaemon(b, framework.Options{Args: framework.MirrorArgs(b)})
	framework.AddBridge(b, d)
	ctx := framework.Ctx(b)
	if _, err := d.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		b.Fatal(err)
	}
	pod := d.PodConfig(b, "pfbench")
	var podID string
	waitForB(b, func() bool {
		resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
		if err == nil {
			podID = resp.PodSandboxId
		}
		return err == nil // until the bridge's network is ready
	})
	c, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podID, SandboxConfig: pod,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "web"}, Image: &runtimeapi.ImageSpec{Image: busybox},
			Command: []string{"sh", "-c", fmt.Sprintf("mkdir -p /w && dd if=/dev/zero of=/w/big bs=1M count=%d 2>/dev/null && exec httpd -f -p 8080 -h /w", benchFileMiB)}}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		b.Fatal(err)
	}
	st, err := d.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: podID, Verbose: true})
	if err != nil {
		b.Fatal(err)
	}
	var info struct{ Netns string }
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil || info.Netns == "" {
		b.Fatalf("netns of the pod: %q, %v", st.Info["info"], err)
	}
	direct := func(context.Context, string, string) (net.Conn, error) {
		var conn net.Conn
		err := nsutil.Do(info.Netns, func() (err error) {
			conn, err = net.Dial("tcp", "127.0.0.1:8080")
			return err
		})
		return conn, err
	}
	waitForB(b, func() bool { _, err := fetch(direct); return err == nil })

	run := func(name string, dial func(context.Context, string, string) (net.Conn, error)) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(benchFileMiB << 20)
			for b.Loop() {
				if n, err := fetch(dial); err != nil || n != benchFileMiB<<20 {
					b.Fatalf("fetched %d bytes: %v", n, err)
				}
			}
		})
	}
	run("direct", direct)
	for _, tr := range transports {
		local := freePort(b)
		fctx, cancel := context.WithCancel(context.Background())
		cmd := crictlCmd(fctx, d, "port-forward", "-r", tr, podID, fmt.Sprintf("%d:8080", local))
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		forwarded := func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", fmt.Sprintf("127.0.0.1:%d", local))
		}
		waitForB(b, func() bool { _, err := fetch(forwarded); return err == nil })
		run(tr, forwarded)
		cancel()
		cmd.Wait()
	}
}

// fetch GETs the benchmark's file over a new connection from dial and
// returns how many bytes of body arrived.
func fetch(dial func(context.Context, string, string) (net.Conn, error)) (int64, error) {
	c := http.Client{Timeout: time.Minute, Transport: &http.Transport{DialContext: dial, DisableKeepAlives: true}}
	r, err := c.Get("http://pod/big")
	if err != nil {
		return 0, err
	}
	defer r.Body.Close()
	if r.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d", r.StatusCode)
	}
	return io.Copy(io.Discard, r.Body)
}

func requireCrictlB(b *testing.B) {
	if _, err := os.Stat(crictlPath); err != nil {
		b.Fatalf("upstream crictl: %v (hack/install-cri-tools.sh installs it)", err)
	}
}

// waitForB is waitFor for a benchmark: cond within 30s.
func waitForB(b *testing.B, cond func() bool) {
	b.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("condition not met in 30s")
		}
	}
}
