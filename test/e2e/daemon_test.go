package e2e

import (
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

func TestVersion(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	v, err := d.Runtime.Version(framework.Ctx(t), &runtimeapi.VersionRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if v.RuntimeName != "nodeagent" || v.RuntimeApiVersion != "v1" || v.Version != "0.1.0" || v.RuntimeVersion == "" {
		t.Errorf("Version() = %+v", v)
	}
}

func TestStatusNetworkReadinessFollowsConfDir(t *testing.T) {
	binDir := t.TempDir()
	// The plugin binaries only need to exist for readiness; ADD is tested with
	// the real plugins by the sandbox tests.
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if err := os.WriteFile(filepath.Join(binDir, p), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	d := framework.StartDaemon(t, framework.Options{Args: []string{"--cni-bin-dir", "/nonexistent:" + binDir}})
	ctx := framework.Ctx(t)

	st := status1(t, d)
	net := condition(st, runtimeapi.NetworkReady)
	if net.Status || net.Reason != "NetworkPluginNotReady" || !strings.Contains(net.Message, "no network config found") {
		t.Errorf("NetworkReady with empty conf dir = %+v", net)
	}
	if rt := condition(st, runtimeapi.RuntimeReady); !rt.Status {
		t.Errorf("RuntimeReady = %+v", rt)
	}

	// A conflist naming a plugin that is not installed is not usable.
	write(t, filepath.Join(d.CNIDir, "10-bad.conflist"), `{"cniVersion":"1.0.0","name":"bad","plugins":[{"type":"nosuchplugin"}]}`)
	waitFor(t, func() bool {
		return strings.Contains(condition(status1(t, d), runtimeapi.NetworkReady).Message, "nosuchplugin")
	})

	write(t, filepath.Join(d.CNIDir, "20-pods.conflist"), `{"cniVersion":"1.0.0","name":"pods","plugins":[
		{"type":"bridge","bridge":"na0","ipam":{"type":"host-local","subnet":"10.250.0.0/24"}},{"type":"loopback"}]}`)
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })

	os.Remove(filepath.Join(d.CNIDir, "20-pods.conflist"))
	waitFor(t, func() bool { return !condition(status1(t, d), runtimeapi.NetworkReady).Status })

	verbose, err := d.Runtime.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(verbose.Info["config"], d.Root) || verbose.Info["handlers"] == "" {
		t.Errorf("verbose info = %v", verbose.Info)
	}
	if len(verbose.RuntimeHandlers) == 0 || verbose.RuntimeHandlers[0].Name != "" {
		t.Errorf("runtime handlers = %v: the default handler must be listed first under \"\"", verbose.RuntimeHandlers)
	}
}

func TestRuntimeConfigAndPodCIDRSurviveRestart(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{Args: []string{"--cgroup-driver", "systemd"}})
	ctx := framework.Ctx(t)
	rc, err := d.Runtime.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_SYSTEMD {
		t.Errorf("cgroup driver = %v, want the configured SYSTEMD", rc.GetLinux().GetCgroupDriver())
	}

	_, err = d.Runtime.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{
		NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "not-a-cidr"}}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "pod_cidr") {
		t.Errorf("bad pod CIDR: %v, want InvalidArgument naming pod_cidr", err)
	}
	_, err = d.Runtime.UpdateRuntimeConfig(ctx, &runtimeapi.UpdateRuntimeConfigRequest{RuntimeConfig: &runtimeapi.RuntimeConfig{
		NetworkConfig: &runtimeapi.NetworkConfig{PodCidr: "10.244.1.0/24,fd00:10:244:1::/64"}}})
	if err != nil {
		t.Fatal(err)
	}
	d.Stop(t)
	d.Start(t)
	st, err := d.Runtime.Status(framework.Ctx(t), &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Info["podCIDR"]; got != "10.244.1.0/24,fd00:10:244:1::/64" {
		t.Errorf("pod CIDR after restart = %q", got)
	}
}

func TestCheckpointRefusedCleanly(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	ctx := framework.Ctx(t)
	_, err := d.Runtime.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: "x", Location: "/tmp/x.tar"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("CheckpointContainer of unknown container: %v, want NotFound", err)
	}
	_, err = d.Runtime.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{ContainerId: "x"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "location") {
		t.Errorf("CheckpointContainer without location: %v", err)
	}
	// CRIU 3.17 cannot work on this kernel: restore must say so, not pretend.
	_, err = d.Runtime.RestorePod(ctx, &runtimeapi.RestorePodRequest{CheckpointPath: t.TempDir()})
	if c := status.Code(err); c != codes.FailedPrecondition && c != codes.Unimplemented {
		t.Errorf("RestorePod: %v, want FailedPrecondition (CRIU's reason)", err)
	}
}

func TestSecondDaemonOnSameSocketRefused(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	out, err := d.Run(t)
	if err == nil || !strings.Contains(out, "another nodeagent is running") {
		t.Errorf("second daemon: err=%v output=%q", err, out)
	}
	if _, err := d.Runtime.Version(framework.Ctx(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Errorf("first daemon stopped answering: %v", err)
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	d := framework.NewDaemon(t, framework.Options{})
	if err := os.MkdirAll(filepath.Dir(d.Socket), 0o755); err != nil {
		t.Fatal(err)
	}
	// A socket left by a crashed daemon: bound, then its listener gone.
	l, err := net.Listen("unix", d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	d.Start(t)
	if _, err := d.Runtime.Version(framework.Ctx(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want 0660", fi.Mode().Perm())
	}
	d.Stop(t)
	if _, err := os.Stat(d.Socket); !os.IsNotExist(err) {
		t.Errorf("socket left after SIGTERM: %v", err)
	}
}

func TestStartupErrors(t *testing.T) {
	cases := []struct {
		name   string
		config string
		args   []string
		want   []string
	}{
		{"unknown key", "root = \"/tmp/x\"\n[cni]\nconfdir = \"/x\"\n", nil, []string{"config.toml:3", `"cni.confdir"`}},
		{"bad value", "cgroup_driver = \"upstart\"\n", nil, []string{"config.toml:1", "cgroup_driver"}},
		{"bad flag value", "", []string{"--registry-mirror", "docker.io"}, []string{"HOST=URL"}},
		{"socket dir not creatable", "", []string{"--socket", "/dev/null/x/nodeagent.sock"}, []string{"create directory", "/dev/null/x"}},
		{"relative root", "", []string{"--root", "relative"}, []string{`"root"`, "absolute"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := framework.NewDaemon(t, framework.Options{Config: tc.config})
			out, err := d.Run(t, tc.args...)
			if err == nil {
				t.Fatalf("daemon started; output:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %q does not mention %q", out, w)
				}
			}
		})
	}
}

func TestConfigDefaultCommand(t *testing.T) {
	out, err := exec.Command(framework.Binary(t), "config", "default").Output()
	if err != nil {
		t.Fatal(err)
	}
	// What it prints is a config the daemon accepts as it is.
	d := framework.NewDaemon(t, framework.Options{Config: string(out)})
	d.Start(t)
	if !strings.Contains(string(out), "[registries]") || !strings.Contains(string(out), "# ") {
		t.Errorf("default config lacks comments or sections:\n%s", out)
	}
}

func status1(t *testing.T, d *framework.Daemon) *runtimeapi.StatusResponse {
	t.Helper()
	st, err := d.Runtime.Status(framework.Ctx(t), &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func condition(st *runtimeapi.StatusResponse, typ string) *runtimeapi.RuntimeCondition {
	for _, c := range st.GetStatus().GetConditions() {
		if c.Type == typ {
			return c
		}
	}
	return &runtimeapi.RuntimeCondition{}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := framework.StartDaemon(t, framework.Options{Config: "[metrics]\naddress = \"" + addr + "\"\n"})
	if _, err := d.Runtime.Version(framework.Ctx(t), &runtimeapi.VersionRequest{}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`nodeagent_cri_rpc_duration_seconds_count{code="OK",method="Version"} `,
		"go_goroutines ", "process_resident_memory_bytes ", "process_open_fds ", `nodeagent_shims{kind="pod"} 0`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestCorruptStoreRefused: a garbage meta.db stops the daemon with an error
// naming the file and how to recover, and the file is left as it was.
func TestCorruptStoreRefused(t *testing.T) {
	d := framework.NewDaemon(t, framework.Options{})
	db := filepath.Join(d.Root, "meta.db")
	garbage := strings.Repeat("this is not a bbolt file\n", 2000)
	if err := os.MkdirAll(d.Root, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, db, garbage)
	out, err := d.Run(t)
	if err == nil {
		t.Fatalf("daemon started on a corrupt store; output:\n%s", out)
	}
	for _, want := range []string{db, "corrupt", "mv " + db} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q does not mention %q", out, want)
		}
	}
	if b, _ := os.ReadFile(db); string(b) != garbage {
		t.Error("the corrupt store was modified: it is the operator's to inspect")
	}
}
