package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/cni"
	"github.com/nodeagent/nodeagent/internal/nsutil"
	"github.com/nodeagent/nodeagent/internal/podnet"
	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// These benchmarks measure through the CRI client, beside the floor of the
// same work done directly, in one run: ratios are what to read (absolute
// times on a shared 2-core VM are noisy). `make bench` runs them.

// benchPod is a pod in CONTAINER pid mode, as kubelet sends by default.
func benchPod(d *framework.Daemon, t testing.TB, i int) *runtimeapi.PodSandboxConfig {
	pod := d.PodConfig(t, fmt.Sprintf("bench-%d", i))
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
	}
	return pod
}

// BenchmarkRunPodSandbox: RunPodSandbox on the bridge network; Stop+Remove
// outside the timer.
func BenchmarkRunPodSandbox(b *testing.B) {
	d := framework.StartDaemon(b, framework.Options{})
	framework.AddBridge(b, d)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: benchPod(d, b, i)})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		removePod(b, d, resp.PodSandboxId)
		b.StartTimer()
	}
}

// BenchmarkStopRemovePodSandbox: StopPodSandbox + RemovePodSandbox.
func BenchmarkStopRemovePodSandbox(b *testing.B) {
	d := framework.StartDaemon(b, framework.Options{})
	framework.AddBridge(b, d)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: benchPod(d, b, i)})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		removePod(b, d, resp.PodSandboxId)
	}
}

// BenchmarkSandboxFloor is the floor RunPodSandbox is held to: create and
// pin the namespaces, then CNI ADD on the same bridge network, directly.
func BenchmarkSandboxFloor(b *testing.B) {
	d := framework.NewDaemon(b, framework.Options{})
	br := framework.AddBridge(b, d)
	m, err := cni.NewManager(d.CNIDir, []string{framework.CNIBinDir}, filepath.Join(d.Dir, "cni-cache"))
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		dir := filepath.Join(d.Dir, "floor", fmt.Sprint(i))
		if err := nsutil.CreatePinned(nsutil.PinOptions{Dir: dir, Types: []nsutil.Type{nsutil.Net, nsutil.IPC, nsutil.UTS}}); err != nil {
			b.Fatal(err)
		}
		req := podnet.Request{SandboxID: fmt.Sprintf("floor%d", i), NetNS: filepath.Join(dir, "net"), PodName: "floor", PodNamespace: "bench", PodUID: "u"}
		if _, err := m.Attach(ctx, req); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := m.Detach(ctx, br.Name, req); err != nil {
			b.Fatal(err)
		}
		if err := nsutil.Unpin(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkPodStart: RunPodSandbox + CreateContainer + StartContainer.
func BenchmarkPodStart(b *testing.B) {
	d := framework.StartDaemon(b, framework.Options{Args: framework.MirrorArgs(b)})
	framework.AddBridge(b, d)
	ctx := context.Background()
	if _, err := d.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		pod := benchPod(d, b, i)
		resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
		if err != nil {
			b.Fatal(err)
		}
		c, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: resp.PodSandboxId, SandboxConfig: pod,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: busybox},
				Command: []string{"sleep", "3600"}, LogPath: "c.log"}})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		removePod(b, d, resp.PodSandboxId)
		b.StartTimer()
	}
}

// BenchmarkExecSync: ExecSync /bin/true in a running container.
func BenchmarkExecSync(b *testing.B) {
	d := framework.StartDaemon(b, framework.Options{Args: framework.MirrorArgs(b)})
	framework.AddBridge(b, d)
	ctx := context.Background()
	if _, err := d.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		b.Fatal(err)
	}
	pod := benchPod(d, b, 0)
	resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		b.Fatal(err)
	}
	c, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: resp.PodSandboxId, SandboxConfig: pod,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: busybox},
			Command: []string{"sleep", "3600"}, LogPath: "c.log"}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		r, err := d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: c.ContainerId, Cmd: []string{"/bin/true"}, Timeout: 10})
		if err != nil || r.ExitCode != 0 {
			b.Fatalf("ExecSync: %v %v", r, err)
		}
	}
	b.StopTimer()
	removePod(b, d, resp.PodSandboxId)
}

// BenchmarkListPodSandbox: ListPodSandbox of 50 pods, answered from memory
// (the daemon at its production log level: -v 4 logs every List).
func BenchmarkListPodSandbox(b *testing.B) {
	d := framework.StartDaemon(b, framework.Options{Args: []string{"-v", "0"}})
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		pod := benchPod(d, b, i)
		pod.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
		if _, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod}); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		l, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
		if err != nil || len(l.Items) != 50 {
			b.Fatalf("ListPodSandbox: %d %v", len(l.GetItems()), err)
		}
	}
}

func removePod(b *testing.B, d *framework.Daemon, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		b.Fatal(err)
	}
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		b.Fatal(err)
	}
}
