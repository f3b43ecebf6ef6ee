package e2e

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/faults"
	"github.com/nodeagent/nodeagent/internal/nsutil"
	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// crashAt restarts d with the fault point armed, runs rpc (the daemon must
// die of SIGKILL at the point, so the call fails), then starts d again
// without it, as a supervisor would after a crash.
func crashAt(t *testing.T, d *framework.Daemon, point string, rpc func(context.Context) error) {
	t.Helper()
	d.Stop(t)
	d.SetEnv(faults.EnvVar + "=" + point)
	d.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := rpc(ctx); err == nil {
		t.Fatalf("%s: the call succeeded: the point was never reached", point)
	}
	d.WaitCrash(t, 30*time.Second)
	d.SetEnv()
	d.Start(t)
}

// keeper is a container running in a pod before the crashes; recovery must
// leave it untouched.
type keeper struct {
	id        string
	startedAt int64
}

func (k keeper) check(t *testing.T, e *podEnv) {
	t.Helper()
	st := e.status(t, k.id)
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.StartedAt != k.startedAt {
		t.Errorf("running container after restart: state %v started %d, want RUNNING started %d", st.State, st.StartedAt, k.startedAt)
	}
}

// TestFaultsKillDaemonMidCreate kills the daemon at every step of
// RunPodSandbox, CreateContainer and StartContainer. After a restart the
// work is finished or undone: nothing half-made is READY or RUNNING, Stop and
// Remove succeed, the name can be used again, a container that was running
// still runs, and the leak check (at the end) finds nothing.
func TestFaultsKillDaemonMidCreate(t *testing.T) {
	e := newPodEnv(t)
	d := e.d
	kid := e.create(t, "keeper", "sleep", "3600")
	e.start(t, kid)
	k := keeper{id: kid, startedAt: e.status(t, kid).StartedAt}

	for _, point := range []string{
		"sandbox/after-record", "sandbox/after-namespaces", "sandbox/after-files",
		"sandbox/after-cni-add", "sandbox/before-ready",
	} {
		t.Run(point, func(t *testing.T) {
			cfg := d.PodConfig(t, "fault")
			crashAt(t, d, point, func(ctx context.Context) error {
				_, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
				return err
			})
			for _, p := range listPods(t, d) {
				if p.Id == e.podID {
					continue
				}
				t.Logf("after restart: sandbox %s %v", p.Id[:12], p.State)
				checkSandboxWhole(t, d, p.Id)
				stopRemovePod(t, d, p.Id)
			}
			for _, dir := range []string{filepath.Join(d.State, "ns"), filepath.Join(d.State, "sandboxes")} {
				if left := dirNames(t, dir); !slices.Equal(left, []string{e.podID}) {
					t.Errorf("%s holds %v, want only the surviving pod", dir, left)
				}
			}
			id := runPod(t, d, cfg) // the name is free again
			checkSandboxWhole(t, d, id)
			stopRemovePod(t, d, id)
			k.check(t, e)
		})
	}

	t.Run("sandbox/stop-after-cni-del", func(t *testing.T) {
		id := runPod(t, d, d.PodConfig(t, "stopfault"))
		crashAt(t, d, "sandbox/stop-after-cni-del", func(ctx context.Context) error {
			_, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
			return err
		})
		checkSandboxWhole(t, d, id)
		stopRemovePod(t, d, id)
		k.check(t, e)
	})

	for _, point := range []string{"container/after-record", "container/after-rootfs", "container/after-shim-create"} {
		t.Run(point, func(t *testing.T) {
			crashAt(t, d, point, func(ctx context.Context) error {
				_, err := e.tryCreate(t, &runtimeapi.ContainerConfig{
					Metadata: &runtimeapi.ContainerMetadata{Name: "victim"}, Command: []string{"sleep", "3600"}})
				return err
			})
			// An interrupted create is undone: kubelet retries it.
			if ids := containerIDs(t, d); !slices.Equal(ids, []string{kid}) {
				t.Errorf("containers after restart = %v, want only %s", ids, kid)
			}
			if left := dirNames(t, filepath.Join(d.Root, "containers")); !slices.Equal(left, []string{kid}) {
				t.Errorf("bundles after restart = %v, want only %s", left, kid)
			}
			id := e.create(t, "victim", "sleep", "3600")
			e.start(t, id)
			removeContainer(t, d, id)
			k.check(t, e)
		})
	}

	for _, point := range []string{"container/before-start", "container/after-start"} {
		t.Run(point, func(t *testing.T) {
			id := e.create(t, "starter", "sleep", "3600")
			crashAt(t, d, point, func(ctx context.Context) error {
				_, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: id})
				return err
			})
			switch st := e.status(t, id); st.State {
			case runtimeapi.ContainerState_CONTAINER_CREATED:
				e.start(t, id) // kubelet's retry
			case runtimeapi.ContainerState_CONTAINER_RUNNING:
				if st.StartedAt == 0 {
					t.Errorf("RUNNING without a start time: %v", st)
				}
			default:
				t.Errorf("after restart: %v, want CREATED or RUNNING", st.State)
			}
			if got := e.exec(t, id, "true"); got.ExitCode != 0 {
				t.Errorf("exec in the started container: %v", got)
			}
			removeContainer(t, d, id)
			k.check(t, e)
		})
	}
}

// TestFaultsKillDaemonMidPull kills the daemon during a pull: after a restart
// no partial image is listed, nothing is left in the store's directories, and
// the pull succeeds when retried.
func TestFaultsKillDaemonMidPull(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{Args: framework.MirrorArgs(t)})
	img := &runtimeapi.ImageSpec{Image: busybox}
	for _, point := range []string{"image/mid-download", "image/before-record"} {
		t.Run(point, func(t *testing.T) {
			crashAt(t, d, point, func(ctx context.Context) error {
				_, err := d.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: img})
				return err
			})
			ctx := framework.Ctx(t)
			if st, err := d.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: img}); err != nil || st.Image != nil {
				t.Errorf("ImageStatus after restart = %v, %v; want no image", st, err)
			}
			for _, dir := range []string{"ingest", "snapshots", "blobs/sha256"} {
				if left := dirNames(t, filepath.Join(d.Root, dir)); len(left) != 0 {
					t.Errorf("%s holds %v after restart, want nothing", dir, left)
				}
			}
			if _, err := d.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: img}); err != nil {
				t.Fatalf("PullImage retry: %v", err)
			}
			if _, err := d.Images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: img}); err != nil {
				t.Fatalf("RemoveImage: %v", err)
			}
		})
	}
}

// checkSandboxWhole fails if a READY sandbox lacks its parts.
func checkSandboxWhole(t *testing.T, d *framework.Daemon, id string) {
	t.Helper()
	st := podStatus(t, d, id)
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		return
	}
	var info struct{ Netns string }
	_ = json.Unmarshal([]byte(st.Info["info"]), &info)
	if !nsutil.IsPinned(info.Netns) || st.Status.GetNetwork().GetIp() == "" {
		t.Fatalf("READY sandbox %s lacks its parts: netns %q pinned=%v ip %q", id, info.Netns, nsutil.IsPinned(info.Netns), st.Status.GetNetwork().GetIp())
	}
	err := nsutil.Do(info.Netns, func() error {
		_, err := net.InterfaceByName("eth0")
		return err
	})
	if err != nil {
		t.Errorf("READY sandbox %s has no pod interface: %v", id, err)
	}
}

func listPods(t *testing.T, d *framework.Daemon) []*runtimeapi.PodSandbox {
	t.Helper()
	l, err := d.Runtime.ListPodSandbox(framework.Ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func containerIDs(t *testing.T, d *framework.Daemon) []string {
	t.Helper()
	l, err := d.Runtime.ListContainers(framework.Ctx(t), &runtimeapi.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range l.Containers {
		ids = append(ids, c.Id)
	}
	slices.Sort(ids)
	return ids
}

func removeContainer(t *testing.T, d *framework.Daemon, id string) {
	t.Helper()
	ctx := framework.Ctx(t)
	if _, err := d.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if _, err := d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
}

// dirNames lists a directory's entries; a missing directory is empty.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}
