package e2e

import (
	"context"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	crierrors "k8s.io/cri-api/pkg/errors"

	"github.com/nodeagent/nodeagent/internal/faults"
	"github.com/nodeagent/nodeagent/oci"
	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// wantClearError fails unless err is a status with code want whose message
// says mention. Unknown is accepted only as kubelet's registry-outage
// contract: the message then starts with "RegistryUnavailable".
func wantClearError(t *testing.T, what string, err error, want codes.Code, mention string) {
	t.Helper()
	st, _ := status.FromError(err)
	switch {
	case err == nil:
		t.Errorf("%s succeeded, want %v mentioning %q", what, want, mention)
	case st.Code() != want:
		t.Errorf("%s: code %v, want %v", what, st.Code(), want)
	case want == codes.Unknown && !strings.HasPrefix(st.Message(), crierrors.ErrRegistryUnavailable.Error()):
		t.Errorf("%s: Unknown without kubelet's %q prefix: %q", what, crierrors.ErrRegistryUnavailable, st.Message())
	case !strings.Contains(st.Message(), mention):
		t.Errorf("%s: message %q does not mention %q", what, st.Message(), mention)
	default:
		t.Logf("%s: %v", what, err)
	}
}

// checkNothingPulled fails if a failed pull left an image, a record or
// anything on disk under the daemon's root but the metadata store.
func checkNothingPulled(t *testing.T, d *framework.Daemon, refs ...string) {
	t.Helper()
	ctx := framework.Ctx(t)
	if l, err := d.Images.ListImages(ctx, &runtimeapi.ListImagesRequest{}); err != nil || len(l.Images) != 0 {
		t.Errorf("ListImages after a failed pull = %v, %v; want none", l, err)
	}
	for _, ref := range refs {
		st, err := d.Images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err != nil || st.Image != nil {
			t.Errorf("ImageStatus %s after a failed pull = %v, %v; want no image", ref, st, err)
		}
	}
	var left []string
	_ = filepath.WalkDir(d.Root, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && e.Name() != "meta.db" {
			left = append(left, strings.TrimPrefix(path, d.Root+"/"))
		}
		return nil
	})
	for _, dir := range []string{"ingest", "snapshots", "blobs/sha256", "containers"} {
		left = append(left, dirNames(t, filepath.Join(d.Root, dir))...)
	}
	if len(left) != 0 {
		t.Errorf("a failed pull left under the root: %v", left)
	}
}

func pullRemove(t *testing.T, d *framework.Daemon, ref string) {
	t.Helper()
	ctx := framework.Ctx(t)
	img := &runtimeapi.ImageSpec{Image: ref}
	if _, err := d.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: img}); err != nil {
		t.Fatalf("PullImage %s from a healthy registry: %v", ref, err)
	}
	if _, err := d.Images.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: img}); err != nil {
		t.Fatalf("RemoveImage %s: %v", ref, err)
	}
}

// TestFaultsRegistryBreaksMidBlob: a registry that stalls, drops the
// connection or sends a short body in the middle of a layer fails the pull
// with a clear error (the stall at images.progress_timeout), leaves no image
// and no file, and the same pull succeeds once the registry is healthy.
func TestFaultsRegistryBreaksMidBlob(t *testing.T) {
	m := framework.StartFaultyMirror(t)
	d := framework.StartDaemon(t, framework.Options{Args: m.Args(), Config: "[images]\nprogress_timeout = \"2s\"\n"})
	for _, tc := range []struct {
		name    string
		fault   framework.BlobFault
		code    codes.Code
		mention string
	}{
		{"stall", framework.StallBlob, codes.Unknown, "images.progress_timeout"},
		{"drop", framework.DropBlob, codes.Unknown, "unexpected EOF"},
		// A short body that says it is whole is the registry serving
		// other content under the digest, as a digest mismatch is.
		{"truncated", framework.TruncateBlob, codes.InvalidArgument, "blob is truncated: the registry sent 262144 of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m.Set(tc.fault, 256<<10)
			broken := m.Broken()
			_, err := d.Images.PullImage(framework.Ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}})
			wantClearError(t, "PullImage", err, tc.code, tc.mention)
			if m.Broken() == broken {
				t.Fatal("the mirror broke no blob")
			}
			checkNothingPulled(t, d, busybox)
			m.Set(framework.Healthy, 0)
			pullRemove(t, d, busybox)
		})
	}

	// Callers of one image share one pull; those of another image with the
	// same layer share its download. All fail with the one broken download.
	t.Run("drop/10 concurrent", func(t *testing.T) {
		m.Set(framework.DropBlob, 256<<10)
		broken := m.Broken()
		refs := []string{busybox, "docker.io/library/busybox:1.37.0"}
		errs := make([]error, 10)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Go(func() {
				img := &runtimeapi.ImageSpec{Image: refs[i%len(refs)]}
				_, errs[i] = d.Images.PullImage(framework.Ctx(t), &runtimeapi.PullImageRequest{Image: img})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if i >= len(refs) && err != nil && status.Convert(err).Message() == status.Convert(errs[i%len(refs)]).Message() {
				continue // the same as a caller checked already
			}
			wantClearError(t, "concurrent PullImage "+refs[i%len(refs)], err, codes.Unknown, "unexpected EOF")
		}
		// Callers arriving after a failure start a new download, which
		// breaks too: how many there were depends on timing.
		if n := m.Broken() - broken; n < 1 {
			t.Errorf("the mirror broke no download")
		} else {
			t.Logf("%d callers, %d broken downloads", len(errs), n)
		}
		checkNothingPulled(t, d, refs...)
		m.Set(framework.Healthy, 0)
		for _, ref := range refs {
			pullRemove(t, d, ref)
		}
	})
}

// TestFaultsDiskFullDuringPull: a pull that fills the file system under the
// daemon's root fails with ResourceExhausted, gives back all the space it
// took, and the daemon goes on serving (a smaller image pulls).
func TestFaultsDiskFullDuringPull(t *testing.T) {
	const big = "docker.io/nodeagent-bench/layers5:gzip" // 5 layers of 8 MiB
	d := framework.StartDaemonOnTmpfs(t, framework.Options{Args: framework.MirrorArgs(t)}, 24<<20)
	free := framework.FreeBytes(t, d.Root)
	_, err := d.Images.PullImage(framework.Ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: big}})
	wantClearError(t, "PullImage on a full disk", err, codes.ResourceExhausted, "no space left on device")
	checkNothingPulled(t, d, big)
	// The metadata store may have grown; nothing else may stay.
	const slack = 1 << 20
	if now := framework.FreeBytes(t, d.Root); now < free-slack {
		t.Errorf("free space after the failed pull: %d bytes, before: %d", now, free)
	}
	if _, err := d.Runtime.Version(framework.Ctx(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Errorf("Version after a full disk: %v", err)
	}
	pullRemove(t, d, busybox)
	if now := framework.FreeBytes(t, d.Root); now < free-slack {
		t.Errorf("free space after pulling and removing a small image: %d bytes, before: %d", now, free)
	}
}

// TestFaultsRuntimeFails runs a pod on a handler whose runc fails or hangs
// on cue. A failed create leaves no container; a failed start leaves one
// that Remove removes; a failed infra create fails RunPodSandbox cleanly; a
// create or start that outlives the caller's deadline is finished and then
// settled, never half-kept. Every message carries runc's.
func TestFaultsRuntimeFails(t *testing.T) {
	rt := framework.NewFaultyRuntime(t)
	d := framework.StartDaemon(t, framework.Options{Args: framework.MirrorArgs(t), Config: rt.HandlerConfig("faulty")})
	framework.AddBridge(t, d)
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	ctx := framework.Ctx(t)
	if _, err := d.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		t.Fatalf("PullImage: %v", err)
	}
	pod := d.PodConfig(t, "faulty")
	resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod, RuntimeHandler: "faulty"})
	if err != nil {
		t.Fatalf("RunPodSandbox on the faulty handler: %v", err)
	}
	e := &podEnv{d: d, podID: resp.PodSandboxId, pod: pod}
	runtimeState := func() []string { return dirNames(t, oci.Layout{State: d.State}.RuntimeRoot("faulty")) }
	// Nothing but the containers the daemon lists: no runtime state, no bundle.
	checkOnly := func(t *testing.T, ids ...string) {
		t.Helper()
		slices.Sort(ids)
		if got := containerIDs(t, d); !slices.Equal(got, ids) {
			t.Errorf("containers = %v, want %v", got, ids)
		}
		// The pod shares one PID namespace (the CRI default): its infra
		// process is a runtime container named by the sandbox id. A
		// container the runtime has not been asked to create yet (never
		// started) has no state there.
		for _, n := range runtimeState() {
			if !slices.Contains(sortedWith(ids, e.podID), n) {
				t.Errorf("runtime state %s is not a listed container or the infra (%v)", n, runtimeState())
			}
		}
		if got := dirNames(t, filepath.Join(d.Root, "containers")); !slices.Equal(got, ids) {
			t.Errorf("bundles = %v, want %v", got, ids)
		}
	}
	// The name is free and the handler works again.
	works := func(t *testing.T, name string) {
		t.Helper()
		id := e.create(t, name, "sleep", "3600")
		e.start(t, id)
		removeContainer(t, d, id)
		checkOnly(t)
	}

	// The runtime creates the container at StartContainer (CreateContainer
	// only prepares it, as in containerd): its create failing shows there.
	t.Run("create fails", func(t *testing.T) {
		id := e.create(t, "c1", "sleep", "3600")
		rt.Fail(t, "create", true)
		_, err := d.Runtime.StartContainer(framework.Ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id})
		wantClearError(t, "StartContainer", err, codes.Internal, framework.InjectedFailure("create"))
		rt.Fail(t, "create", false)
		if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_CREATED {
			t.Errorf("after the runtime failed to create it: %v, want CREATED", st.State)
		}
		checkOnly(t, id)
		removeContainer(t, d, id)
		checkOnly(t)
		works(t, "c1")
	})

	t.Run("start fails", func(t *testing.T) {
		id := e.create(t, "c2", "sleep", "3600")
		rt.Fail(t, "start", true)
		_, err := d.Runtime.StartContainer(framework.Ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id})
		wantClearError(t, "StartContainer", err, codes.Internal, framework.InjectedFailure("start"))
		if strings.Contains(status.Convert(err).Message(), `{"level"`) {
			t.Errorf("StartContainer quotes the runtime's raw log instead of its message: %v", err)
		}
		rt.Fail(t, "start", false)
		if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_CREATED && st.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Errorf("after a failed start: %v, want CREATED or EXITED", st.State)
		}
		checkOnly(t, id)
		// kubelet removes a container it could not start.
		if _, err := d.Runtime.RemoveContainer(framework.Ctx(t), &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Fatalf("RemoveContainer: %v", err)
		}
		checkOnly(t)
		works(t, "c2")
	})

	t.Run("infra create fails", func(t *testing.T) {
		cfg := d.PodConfig(t, "faulty-infra")
		cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
			NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_POD}}
		rt.Fail(t, "create", true)
		_, err := d.Runtime.RunPodSandbox(framework.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "faulty"})
		wantClearError(t, "RunPodSandbox", err, codes.Internal, framework.InjectedFailure("create"))
		rt.Fail(t, "create", false)
		if pods := listPods(t, d); len(pods) != 1 || pods[0].Id != e.podID {
			t.Errorf("a failed infra create left sandboxes: %v", pods)
		}
		for _, dir := range []string{"ns", "sandboxes", "infra"} {
			if left := dirNames(t, filepath.Join(d.State, dir)); slices.ContainsFunc(left, func(n string) bool { return n != e.podID }) {
				t.Errorf("%s holds %v after a failed infra create", dir, left)
			}
		}
		id := runPod(t, d, cfg) // the name was released
		stopRemovePod(t, d, id)
	})

	t.Run("runtime create outlives its caller", func(t *testing.T) {
		id := e.create(t, "c3", "sleep", "3600")
		rt.Hang(t, "create", true)
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := d.Runtime.StartContainer(sctx, &runtimeapi.StartContainerRequest{ContainerId: id})
		if status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("StartContainer past its deadline: %v, want DeadlineExceeded", err)
		}
		rt.Hang(t, "create", false) // runc create returns at last
		waitFor(t, func() bool { return e.status(t, id).State == runtimeapi.ContainerState_CONTAINER_RUNNING })
		removeContainer(t, d, id)
		checkOnly(t)
	})

	t.Run("start outlives its caller", func(t *testing.T) {
		id := e.create(t, "c4", "sleep", "3600")
		rt.Hang(t, "start", true)
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := d.Runtime.StartContainer(sctx, &runtimeapi.StartContainerRequest{ContainerId: id})
		if status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("StartContainer past its deadline: %v, want DeadlineExceeded", err)
		}
		rt.Hang(t, "start", false)
		// The start went through: the record must say so (kubelet's retry
		// would otherwise start a running container).
		waitFor(t, func() bool { return e.status(t, id).State == runtimeapi.ContainerState_CONTAINER_RUNNING })
		if got := e.exec(t, id, "true"); got.ExitCode != 0 {
			t.Errorf("exec in the late-started container: %v", got)
		}
		removeContainer(t, d, id)
		checkOnly(t)
	})

	stopRemovePod(t, d, e.podID)
}

func sortedWith(ids []string, more ...string) []string {
	out := append(slices.Clone(ids), more...)
	slices.Sort(out)
	return out
}

// TestFaultsCreateOutlivesCaller: a CreateContainer slower than kubelet's
// deadline (a 3 s step on cue) finishes anyway, and kubelet's retry of the
// same name gets that container, made before the retry was sent, instead of
// a second one; the name is then taken.
func TestFaultsCreateOutlivesCaller(t *testing.T) {
	e := newPodEnv(t)
	d := e.d
	d.Stop(t)
	d.SetEnv(faults.EnvVar + "=container/after-rootfs@3s")
	d.Start(t)
	cfg := func() *runtimeapi.ContainerConfig {
		return &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "slow"}, Command: []string{"sleep", "3600"}}
	}
	cctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := d.Runtime.CreateContainer(cctx, &runtimeapi.CreateContainerRequest{PodSandboxId: e.podID, SandboxConfig: e.pod,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "slow"}, Command: []string{"sleep", "3600"},
			Image: &runtimeapi.ImageSpec{Image: busybox}, LogPath: "slow.log"}})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("CreateContainer past its deadline: %v, want DeadlineExceeded", err)
	}
	retried := time.Now()
	id, err := e.tryCreate(t, cfg())
	if err != nil {
		t.Fatalf("CreateContainer retry: %v", err)
	}
	if st := e.status(t, id); time.Unix(0, st.CreatedAt).After(retried) {
		t.Errorf("the retry made a new container (created %v, retry sent %v)", time.Unix(0, st.CreatedAt), retried)
	}
	if ids := containerIDs(t, d); !slices.Equal(ids, []string{id}) {
		t.Errorf("containers = %v, want only %s", ids, id)
	}
	if _, err := e.tryCreate(t, cfg()); status.Code(err) != codes.AlreadyExists {
		t.Errorf("another create of the taken name: %v, want AlreadyExists", err)
	}
	e.start(t, id)
	removeContainer(t, d, id)
	// kubelet gives up on a create and removes the pod while the create
	// still runs: the removal waits for it, and nothing of it is left (the
	// leak check at the end finds no rootfs mount).
	cctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	_, err = d.Runtime.CreateContainer(cctx2, &runtimeapi.CreateContainerRequest{PodSandboxId: e.podID, SandboxConfig: e.pod,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "abandoned"}, Command: []string{"sleep", "3600"},
			Image: &runtimeapi.ImageSpec{Image: busybox}, LogPath: "abandoned.log"}})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("CreateContainer past its deadline: %v, want DeadlineExceeded", err)
	}
	stopRemovePod(t, d, e.podID)
	if ids := containerIDs(t, d); len(ids) != 0 {
		t.Errorf("containers after the pod was removed: %v", ids)
	}
	d.SetEnv()
}
