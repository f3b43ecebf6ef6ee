package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

const busybox = "registry.k8s.io/e2e-test-images/busybox:1.29-2"

// podEnv is a daemon on the test registry with a bridge network and one pod.
type podEnv struct {
	d     *framework.Daemon
	podID string
	pod   *runtimeapi.PodSandboxConfig
	br    *framework.Bridge // the CNI network the pod is on
}

func newPodEnv(t *testing.T) *podEnv {
	t.Helper()
	d := framework.StartDaemon(t, framework.Options{Args: framework.MirrorArgs(t)})
	br := framework.AddBridge(t, d)
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	if _, err := d.Images.PullImage(framework.Ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		t.Fatalf("PullImage: %v", err)
	}
	pod := d.PodConfig(t, "ctr")
	return &podEnv{d: d, podID: runPod(t, d, pod), pod: pod, br: br}
}

func (e *podEnv) create(t *testing.T, name string, cmd ...string) string {
	t.Helper()
	id, err := e.tryCreate(t, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: name}, Command: cmd})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	return id
}

func (e *podEnv) tryCreate(t *testing.T, cfg *runtimeapi.ContainerConfig) (string, error) {
	t.Helper()
	if cfg.Image == nil {
		cfg.Image = &runtimeapi.ImageSpec{Image: busybox}
	}
	if cfg.LogPath == "" {
		cfg.LogPath = cfg.GetMetadata().GetName() + ".log"
	}
	resp, err := e.d.Runtime.CreateContainer(framework.Ctx(t), &runtimeapi.CreateContainerRequest{PodSandboxId: e.podID, Config: cfg, SandboxConfig: e.pod})
	return resp.GetContainerId(), err
}

func (e *podEnv) start(t *testing.T, id string) {
	t.Helper()
	if _, err := e.d.Runtime.StartContainer(framework.Ctx(t), &runtimeapi.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
}

func (e *podEnv) status(t *testing.T, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	st, err := e.d.Runtime.ContainerStatus(framework.Ctx(t), &runtimeapi.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStatus: %v", err)
	}
	return st.Status
}

func (e *podEnv) waitExited(t *testing.T, id string) *runtimeapi.ContainerStatus {
	t.Helper()
	var st *runtimeapi.ContainerStatus
	waitFor(t, func() bool {
		st = e.status(t, id)
		return st.State == runtimeapi.ContainerState_CONTAINER_EXITED
	})
	return st
}

func (e *podEnv) exec(t *testing.T, id string, cmd ...string) *runtimeapi.ExecSyncResponse {
	t.Helper()
	resp, err := e.d.Runtime.ExecSync(framework.Ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: cmd, Timeout: 10})
	if err != nil {
		t.Fatalf("ExecSync %v: %v", cmd, err)
	}
	return resp
}

var criLogLine = regexp.MustCompile(`^\S+ (stdout|stderr) (F|P) (.*)$`)

func TestContainerLifecycle(t *testing.T) {
	e := newPodEnv(t)
	ctx := framework.Ctx(t)
	// PID 1 of a pid namespace ignores signals it has no handler for: the
	// trap makes SIGTERM a graceful stop.
	id := e.create(t, "main", "sh", "-c", "trap 'exit 0' TERM; echo hello; echo oops >&2; while true; do sleep 0.2; done")
	if st := e.status(t, id); st.State != runtimeapi.ContainerState_CONTAINER_CREATED || st.ImageRef == "" {
		t.Errorf("after create: %v", st)
	}
	e.start(t, id)
	st := e.status(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_RUNNING || st.StartedAt == 0 || st.LogPath == "" {
		t.Errorf("after start: %v", st)
	}

	out := e.exec(t, id, "sh", "-c", "echo out; echo err >&2; hostname; exit 7")
	if string(out.Stdout) != "out\nctr\n" || string(out.Stderr) != "err\n" || out.ExitCode != 7 {
		t.Errorf("ExecSync = %q %q %d", out.Stdout, out.Stderr, out.ExitCode)
	}
	_, err := e.d.Runtime.ExecSync(ctx, &runtimeapi.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "60"}, Timeout: 1})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("ExecSync past its timeout: %v, want DeadlineExceeded", err)
	}
	if ps := e.exec(t, id, "sh", "-c", "ps -o args | grep -c '[s]leep 60'"); strings.TrimSpace(string(ps.Stdout)) != "0" {
		t.Errorf("the timed-out exec left a process: %q", ps.Stdout)
	}

	waitFor(t, func() bool {
		b, _ := os.ReadFile(st.LogPath)
		return strings.Count(string(b), "\n") >= 2
	})
	logs, _ := os.ReadFile(st.LogPath)
	lines := strings.Split(strings.TrimSpace(string(logs)), "\n")
	var got []string
	for _, l := range lines {
		m := criLogLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("log line %q is not in CRI format", l)
		}
		got = append(got, m[1]+":"+m[3])
	}
	if strings.Join(got, ",") != "stdout:hello,stderr:oops" && strings.Join(got, ",") != "stderr:oops,stdout:hello" {
		t.Errorf("logs = %v", got)
	}

	l, err := e.d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{PodSandboxId: e.podID[:12]}})
	if err != nil || len(l.Containers) != 1 || l.Containers[0].Id != id {
		t.Errorf("ListContainers by sandbox = %v, %v", l, err)
	}
	pst := podStatus(t, e.d, e.podID)
	if len(pst.ContainersStatuses) != 1 {
		t.Errorf("PodSandboxStatus.containers_statuses = %v", pst.ContainersStatuses)
	}

	if _, err := e.d.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id, Timeout: 10}); err != nil {
		t.Fatal(err)
	}
	st = e.status(t, id)
	if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.ExitCode != 0 || st.FinishedAt == 0 {
		t.Errorf("after stop: state %v exit %d finished %d", st.State, st.ExitCode, st.FinishedAt)
	}
	for range 2 {
		if _, err := e.d.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("second stop: %v", err)
		}
		if _, err := e.d.Runtime.RemoveContainer(ctx, &runtimeapi.RemoveContainerRequest{ContainerId: id}); err != nil {
			t.Errorf("remove: %v", err)
		}
	}
	if _, err := e.d.Runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: id}); status.Code(err) != codes.NotFound {
		t.Errorf("status of removed container: %v", err)
	}
	stopRemovePod(t, e.d, e.podID)
}

func TestContainerExitCodes(t *testing.T) {
	e := newPodEnv(t)
	cases := []struct {
		cmd    []string
		code   int32
		reason string
	}{
		{[]string{"true"}, 0, "Completed"},
		{[]string{"sh", "-c", "exit 3"}, 3, "Error"},
	}
	for i, tc := range cases {
		id := e.create(t, "exit"+string(rune('a'+i)), tc.cmd...)
		e.start(t, id)
		st := e.waitExited(t, id)
		if st.ExitCode != tc.code || st.Reason != tc.reason {
			t.Errorf("%v: exit %d reason %q, want %d %q", tc.cmd, st.ExitCode, st.Reason, tc.code, tc.reason)
		}
	}
	// Removing the pod removes its containers too.
	stopRemovePod(t, e.d, e.podID)
	l, _ := e.d.Runtime.ListContainers(framework.Ctx(t), &runtimeapi.ListContainersRequest{})
	if len(l.GetContainers()) != 0 {
		t.Errorf("containers left after RemovePodSandbox: %v", l.Containers)
	}
}

func TestContainerSecurityDefaults(t *testing.T) {
	e := newPodEnv(t)
	id := e.create(t, "sec", "sleep", "3600")
	e.start(t, id)
	// The default capability set (containerd's 14), nothing more.
	if out := e.exec(t, id, "sh", "-c", "grep CapEff /proc/self/status"); !strings.Contains(string(out.Stdout), "00000000a80425fb") {
		t.Errorf("effective capabilities: %q", out.Stdout)
	}
	// Masked paths show nothing.
	if out := e.exec(t, id, "sh", "-c", "cat /proc/kcore | wc -c"); strings.TrimSpace(string(out.Stdout)) != "0" {
		t.Errorf("/proc/kcore readable: %q", out.Stdout)
	}
	ro, err := e.tryCreate(t, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "ro"}, Command: []string{"sleep", "3600"},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{ReadonlyRootfs: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, ro)
	if out := e.exec(t, ro, "sh", "-c", "touch /x"); out.ExitCode == 0 {
		t.Error("wrote to a read-only rootfs")
	}
	stopRemovePod(t, e.d, e.podID)
}

func TestContainerBadInput(t *testing.T) {
	e := newPodEnv(t)
	ctx := framework.Ctx(t)
	name := func(n string) *runtimeapi.ContainerMetadata { return &runtimeapi.ContainerMetadata{Name: n} }
	e.create(t, "taken", "true")
	// Stopping a container whose process ignores SIGTERM kills it.
	stubborn := e.create(t, "stubborn", "sh", "-c", "trap '' TERM; sleep 3600")
	e.start(t, stubborn)
	if _, err := e.d.Runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: stubborn, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if st := e.status(t, stubborn); st.ExitCode != 137 {
		t.Errorf("SIGKILLed after the timeout: exit %d, want 137", st.ExitCode)
	}
	cases := []struct {
		name    string
		cfg     *runtimeapi.ContainerConfig
		code    codes.Code
		mention string
	}{
		{"log path escapes", &runtimeapi.ContainerConfig{Metadata: name("a"), LogPath: "../../../etc/evil.log"}, codes.InvalidArgument, "log_path"},
		{"missing host path", &runtimeapi.ContainerConfig{Metadata: name("b"), Mounts: []*runtimeapi.Mount{{HostPath: "/nonexistent/nodeagent", ContainerPath: "/m"}}}, codes.InvalidArgument, "host_path"},
		{"duplicate name", &runtimeapi.ContainerConfig{Metadata: name("taken")}, codes.AlreadyExists, "taken"},
		{"unknown image", &runtimeapi.ContainerConfig{Metadata: name("c"), Image: &runtimeapi.ImageSpec{Image: "docker.io/library/nosuchimage:1"}}, codes.NotFound, "nosuchimage"},
		{"no metadata", &runtimeapi.ContainerConfig{}, codes.InvalidArgument, "metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.tryCreate(t, tc.cfg)
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("err = %v, want %v mentioning %q", err, tc.code, tc.mention)
			}
		})
	}
	_, err := e.d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: "nosuchpod", Config: &runtimeapi.ContainerConfig{Metadata: name("x"), Image: &runtimeapi.ImageSpec{Image: busybox}}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("create in unknown pod: %v", err)
	}
	_, err = e.d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: "nosuchctr"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("start unknown: %v", err)
	}
	l, _ := e.d.Runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if len(l.GetContainers()) != 2 {
		t.Errorf("refused creates left containers: %v", l.Containers)
	}
	entries, _ := os.ReadDir(filepath.Join(e.d.Root, "containers"))
	if len(entries) != 2 {
		t.Errorf("refused creates left bundles: %v", entries)
	}
	stopRemovePod(t, e.d, e.podID)
}

func TestContainersSurviveDaemonCrash(t *testing.T) {
	e := newPodEnv(t)
	running := e.create(t, "running", "sleep", "3600")
	e.start(t, running)
	exits := e.create(t, "exits", "sh", "-c", "sleep 2; exit 5")
	e.start(t, exits)
	e.d.Kill(t)
	time.Sleep(3 * time.Second) // "exits" ends while the daemon is down
	e.d.Start(t)
	if st := e.status(t, running); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
		t.Errorf("running container after restart: %v", st.State)
	}
	if out := e.exec(t, running, "echo", "still here"); string(out.Stdout) != "still here\n" {
		t.Errorf("exec after restart: %q", out.Stdout)
	}
	if st := e.waitExited(t, exits); st.ExitCode != 5 {
		t.Errorf("exit recorded while the daemon was down: %d", st.ExitCode)
	}
	stopRemovePod(t, e.d, e.podID)
}

// TestUserNamespacePod: a pod with its own user namespace (runc >= 1.2)
// runs containers mapped as asked; bad mappings are refused.
func TestUserNamespacePod(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{Args: framework.MirrorArgs(t)})
	framework.AddBridge(t, d)
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	ctx := framework.Ctx(t)
	if _, err := d.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		t.Fatal(err)
	}
	userns := func(maps ...*runtimeapi.IDMapping) *runtimeapi.PodSandboxConfig {
		pod := d.PodConfig(t, "userns")
		pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{
			UsernsOptions: &runtimeapi.UserNamespace{Mode: runtimeapi.NamespaceMode_POD, Uids: maps, Gids: maps}}}
		return pod
	}
	for _, bad := range [][]*runtimeapi.IDMapping{
		{{ContainerId: 1, HostId: 100000, Length: 65536}},
		{{ContainerId: 0, HostId: 100000, Length: 65536}, {ContainerId: 0, HostId: 200000, Length: 65536}},
	} {
		_, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: userns(bad...)})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("mapping %v: %v, want InvalidArgument", bad, err)
		}
	}
	pod := userns(&runtimeapi.IDMapping{ContainerId: 0, HostId: 100000, Length: 65536})
	e := &podEnv{d: d, pod: pod, podID: runPod(t, d, pod)}
	id, err := e.tryCreate(t, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "mapped"}, Command: []string{"cat", "/proc/self/uid_map"},
		Linux: &runtimeapi.LinuxContainerConfig{SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
			NamespaceOptions: pod.Linux.SecurityContext.NamespaceOptions}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, id)
	st := e.waitExited(t, id)
	logs, _ := os.ReadFile(st.LogPath)
	if !regexp.MustCompile(`\s+0\s+100000\s+65536`).Match(logs) || st.ExitCode != 0 {
		t.Errorf("uid_map in the container: %q (exit %d)", logs, st.ExitCode)
	}
	stopRemovePod(t, d, e.podID)
}

func TestUpdateContainerResources(t *testing.T) {
	e := newPodEnv(t)
	id := e.create(t, "resize", "sleep", "3600")
	e.start(t, id)
	ctx := framework.Ctx(t)
	res := &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 64 << 20, CpuShares: 512}
	if _, err := e.d.Runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: id, Linux: res}); err != nil {
		t.Fatal(err)
	}
	// The container's own cgroup, as runc mounts it inside (cgroup v1).
	out := e.exec(t, id, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.shares")
	if got := strings.Fields(string(out.Stdout)); len(got) != 2 || got[0] != "67108864" || got[1] != "512" {
		t.Errorf("cgroup after update: %q", out.Stdout)
	}
	st := e.status(t, id)
	if st.GetResources().GetLinux().GetMemoryLimitInBytes() != 64<<20 {
		t.Errorf("ContainerStatus.resources = %v", st.GetResources())
	}
	_, err := e.d.Runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: "nosuch", Linux: res})
	if status.Code(err) != codes.NotFound {
		t.Errorf("update of unknown container: %v", err)
	}
	// A created container gets the new limits when it starts (the runtime
	// creates it then, from its bundle).
	created := e.create(t, "resize-before-start", "sleep", "3600")
	res = &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 48 << 20, CpuShares: 256}
	if _, err := e.d.Runtime.UpdateContainerResources(ctx, &runtimeapi.UpdateContainerResourcesRequest{ContainerId: created, Linux: res}); err != nil {
		t.Fatalf("update of a created container: %v", err)
	}
	e.start(t, created)
	out = e.exec(t, created, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/cpu/cpu.shares")
	if got := strings.Fields(string(out.Stdout)); len(got) != 2 || got[0] != "50331648" || got[1] != "256" {
		t.Errorf("cgroup of a container updated before its start: %q", out.Stdout)
	}
	if e.status(t, created).GetResources().GetLinux().GetMemoryLimitInBytes() != 48<<20 {
		t.Errorf("ContainerStatus.resources of a container updated before its start = %v", e.status(t, created).GetResources())
	}
	stopRemovePod(t, e.d, e.podID)
}

func TestContainerAndPodStats(t *testing.T) {
	e := newPodEnv(t)
	id := e.create(t, "busy", "sh", "-c", "while true; do :; done")
	e.start(t, id)
	ctx := framework.Ctx(t)
	cs, err := e.d.Runtime.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	if cs.Stats.GetAttributes().GetId() != id || cs.Stats.GetCpu().GetTimestamp() == 0 || cs.Stats.GetMemory().GetWorkingSetBytes() == nil {
		t.Errorf("ContainerStats = %v", cs.Stats)
	}
	ps, err := e.d.Runtime.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: e.podID})
	if err != nil {
		t.Fatal(err)
	}
	l := ps.Stats.GetLinux()
	if ps.Stats.GetAttributes().GetId() != e.podID || len(l.GetContainers()) != 1 || l.GetNetwork().GetDefaultInterface().GetName() != "eth0" || l.GetCpu() == nil {
		t.Errorf("PodSandboxStats = %v", ps.Stats)
	}
	list, err := e.d.Runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{Filter: &runtimeapi.ContainerStatsFilter{LabelSelector: map[string]string{"nope": "x"}}})
	if err != nil || len(list.Stats) != 0 {
		t.Errorf("label filter: %v %v", list, err)
	}
	stopRemovePod(t, e.d, e.podID)
}
