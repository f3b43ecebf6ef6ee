package e2e

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// footprintSlack is how many goroutines or fds above its baseline a daemon
// may keep after load: a gRPC connection or a timer winding down.
const footprintSlack = 5

// newLoadEnv is a daemon serving /metrics, on a bridge network, with busybox
// pulled.
func newLoadEnv(t *testing.T) (*framework.Daemon, *framework.Metrics) {
	t.Helper()
	d, m := framework.StartDaemonWithMetrics(t, framework.Options{Args: framework.MirrorArgs(t)})
	framework.AddBridge(t, d)
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	if _, err := d.Images.PullImage(framework.Ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		t.Fatalf("PullImage: %v", err)
	}
	return d, m
}

// loadPodConfig is a pod as kubelet sends it: one PID namespace per
// container (so no pause process).
func loadPodConfig(t *testing.T, d *framework.Daemon, name string) *runtimeapi.PodSandboxConfig {
	cfg := d.PodConfig(t, name)
	cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
	}
	return cfg
}

// TestLoad: 100 pods started at once on a bridge network, all READY; 50
// concurrent ExecSync on one container, each with its own output; the pods
// removed at once; the daemon's goroutines and fds back to their baseline.
// It asserts no timing (the machine may have 2 cores): it logs pods/s.
func TestLoad(t *testing.T) {
	const pods, execs = 100, 50
	d, m := newLoadEnv(t)
	base := m.Quiet(t)

	ids := make([]string, pods)
	cfgs := make([]*runtimeapi.PodSandboxConfig, pods)
	errs := make([]error, pods)
	begin := time.Now()
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() {
			cfgs[i] = loadPodConfig(t, d, fmt.Sprintf("load-%d", i))
			resp, err := d.Runtime.RunPodSandbox(framework.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfgs[i]})
			ids[i], errs[i] = resp.GetPodSandboxId(), err
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("RunPodSandbox %d: %v", i, err)
		}
	}
	for _, id := range ids {
		if st := podStatus(t, d, id); st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("pod %s: %v", id, st.Status.State)
		}
	}
	t.Logf("%d pods started concurrently in %v: %.1f pods/s", pods, elapsed.Round(time.Millisecond), float64(pods)/elapsed.Seconds())

	e := &podEnv{d: d, podID: ids[0], pod: cfgs[0]}
	cid := e.create(t, "exec", "sleep", "3600")
	e.start(t, cid)
	begin = time.Now()
	for i := range execs {
		wg.Go(func() {
			resp, err := d.Runtime.ExecSync(framework.Ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"echo", strconv.Itoa(i)}, Timeout: 60})
			if err != nil || string(resp.Stdout) != strconv.Itoa(i)+"\n" || resp.ExitCode != 0 {
				t.Errorf("ExecSync %d: %q %d %v", i, resp.GetStdout(), resp.GetExitCode(), err)
			}
		})
	}
	wg.Wait()
	elapsed = time.Since(begin)
	t.Logf("%d concurrent ExecSync in %v: %.1f/s", execs, elapsed.Round(time.Millisecond), float64(execs)/elapsed.Seconds())

	begin = time.Now()
	for i, id := range ids {
		wg.Go(func() {
			ctx := framework.Ctx(t)
			if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
				t.Errorf("StopPodSandbox %d: %v", i, err)
			}
			if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
				t.Errorf("RemovePodSandbox %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	elapsed = time.Since(begin)
	t.Logf("%d pods removed concurrently in %v: %.1f pods/s", pods, elapsed.Round(time.Millisecond), float64(pods)/elapsed.Seconds())
	after := m.Settle(t, base, footprintSlack)
	t.Logf("daemon before: %v", base)
	t.Logf("daemon after:  %v", after)
}

// churnCycle is one pod's life as kubelet drives it: RunPodSandbox on the
// bridge network, with a container (create, start, stop, remove) when
// withContainer, then StopPodSandbox and RemovePodSandbox.
func churnCycle(ctx context.Context, d *framework.Daemon, cfg *runtimeapi.PodSandboxConfig, withContainer bool) error {
	run, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return fmt.Errorf("RunPodSandbox: %w", err)
	}
	id := run.PodSandboxId
	if withContainer {
		c, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: id, SandboxConfig: cfg,
			Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"},
				Image: &runtimeapi.ImageSpec{Image: busybox}, Command: []string{"sleep", "3600"}, LogPath: "c.log"}})
		if err != nil {
			return fmt.Errorf("CreateContainer: %w", err)
		}
		cid := c.ContainerId
		if _, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cid}); err != nil {
			return fmt.Errorf("StartContainer: %w", err)
		}
		if _, err := d.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: cid}); err != nil {
			return fmt.Errorf("StopContainer: %w", err)
		}
		if _, err := d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: cid}); err != nil {
			return fmt.Errorf("RemoveContainer: %w", err)
		}
	}
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("StopPodSandbox: %w", err)
	}
	if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("RemovePodSandbox: %w", err)
	}
	return nil
}

// TestChurn: 1000 pods, one after another, run and removed on a bridge
// network, every 10th with a container started, stopped and removed. From
// the end of a warm-up (caches, pools and the metadata store at their
// working size) to the end, the daemon must hold no more goroutines or fds
// (slack for a winding-down connection) and no more memory than a bound:
// the heap goal (go_memstats_next_gc_bytes, the live heap at the last GC
// times two: steady between GCs, unlike heap-in-use or RSS, which swing
// with garbage not yet collected) may grow by 20% + 4 MiB, anonymous RSS
// (heap and stacks as the kernel counts them, without the mmap'd store) by
// 50% + 16 MiB as a backstop for what the heap figure does not see. A leak
// of one goroutine or one fd per pod fails it, and so does one of ~3 KiB of
// heap (the goal moves by twice what stays live).
func TestChurn(t *testing.T) {
	const cycles, warmup, containerEvery = 1000, 50, 10
	d, m := newLoadEnv(t)
	var base framework.Footprint
	begin := time.Now()
	var measured time.Time
	for i := range cycles {
		if i == warmup {
			base = m.Quiet(t)
			measured = time.Now()
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := churnCycle(ctx, d, loadPodConfig(t, d, fmt.Sprintf("churn-%d", i)), i%containerEvery == 0)
		cancel()
		if err != nil {
			t.Fatalf("cycle %d: %v", i, err)
		}
		if (i+1)%250 == 0 {
			t.Logf("%d cycles in %v: %v", i+1, time.Since(begin).Round(time.Millisecond), m.Footprint(t))
		}
	}
	elapsed := time.Since(measured)
	n := cycles - warmup
	t.Logf("%d cycles (every %dth with a container) after a warm-up of %d in %v: %.1f ms/cycle, %.1f pods/s",
		n, containerEvery, warmup, elapsed.Round(time.Millisecond), float64(elapsed.Milliseconds())/float64(n), float64(n)/elapsed.Seconds())
	if pods := listPods(t, d); len(pods) != 0 {
		t.Errorf("%d pods left after churn", len(pods))
	}
	after := m.Settle(t, base, footprintSlack)
	t.Logf("daemon after warm-up: %v", base)
	t.Logf("daemon after churn:   %v", after)
	if limit := base.HeapGoal + base.HeapGoal/5 + 4<<20; after.HeapGoal > limit {
		t.Errorf("heap goal grew from %s to %s over %d pods (limit %s): a leak of Go memory",
			framework.MiB(base.HeapGoal), framework.MiB(after.HeapGoal), n, framework.MiB(limit))
	}
	if limit := base.RSSAnon + base.RSSAnon/2 + 16<<20; after.RSSAnon > limit {
		t.Errorf("anonymous RSS grew from %s to %s over %d pods (limit %s)",
			framework.MiB(base.RSSAnon), framework.MiB(after.RSSAnon), n, framework.MiB(limit))
	}
}
