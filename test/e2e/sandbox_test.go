package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/nsutil"
	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

func podConfig(name string) *runtimeapi.PodSandboxConfig {
	return &runtimeapi.PodSandboxConfig{
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: "uid-" + name},
		Hostname: name,
		Labels:   map[string]string{"app": name, "suite": "e2e"},
	}
}

func runPod(t *testing.T, d *framework.Daemon, cfg *runtimeapi.PodSandboxConfig) string {
	t.Helper()
	resp, err := d.Runtime.RunPodSandbox(framework.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("RunPodSandbox: %v", err)
	}
	return resp.PodSandboxId
}

func podStatus(t *testing.T, d *framework.Daemon, id string) *runtimeapi.PodSandboxStatusResponse {
	t.Helper()
	st, err := d.Runtime.PodSandboxStatus(framework.Ctx(t), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id, Verbose: true})
	if err != nil {
		t.Fatalf("PodSandboxStatus: %v", err)
	}
	return st
}

func stopRemovePod(t *testing.T, d *framework.Daemon, id string) {
	t.Helper()
	ctx := framework.Ctx(t)
	// Twice each: kubelet retries, and both calls are idempotent.
	for range 2 {
		if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("StopPodSandbox: %v", err)
		}
	}
	for range 2 {
		if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
			t.Fatalf("RemovePodSandbox: %v", err)
		}
	}
}

func TestSandboxLifecycle(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	br := framework.AddBridge(t, d)
	ctx := framework.Ctx(t)
	cfg := podConfig("life")
	cfg.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"10.96.0.10"}, Searches: []string{"e2e.svc.cluster.local"}, Options: []string{"ndots:5"}}
	cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "100", "kernel.shm_rmid_forced": "1"}}
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	id := runPod(t, d, cfg)

	st := podStatus(t, d, id)
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
		t.Errorf("state = %v", st.Status.State)
	}
	ip := net.ParseIP(st.Status.GetNetwork().GetIp())
	if ip == nil || !br.Subnet.Contains(ip) {
		t.Errorf("pod IP %q not in %v", st.Status.GetNetwork().GetIp(), br.Subnet)
	}
	var info struct {
		Netns      string
		Namespaces map[string]string
		Files      struct{ Resolv string }
	}
	if err := json.Unmarshal([]byte(st.Info["info"]), &info); err != nil {
		t.Fatalf("verbose info %q: %v", st.Info["info"], err)
	}
	if !nsutil.IsPinned(info.Netns) || !nsutil.IsPinned(info.Namespaces["ipc"]) || !nsutil.IsPinned(info.Namespaces["uts"]) {
		t.Errorf("namespaces not pinned: %+v", info)
	}
	resolv, _ := os.ReadFile(info.Files.Resolv)
	if string(resolv) != "search e2e.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n" {
		t.Errorf("resolv.conf = %q", resolv)
	}
	// The sysctls and the hostname are set inside the pod's namespaces.
	err := nsutil.Do(info.Netns, func() error {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
		if strings.TrimSpace(string(b)) != "100" {
			return fmt.Errorf("ip_unprivileged_port_start = %q, %v", b, err)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}

	for _, f := range []*runtimeapi.PodSandboxFilter{
		{Id: id}, {Id: id[:12]}, {State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}},
		{LabelSelector: map[string]string{"app": "life"}},
	} {
		l, err := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: f})
		if err != nil || len(l.Items) != 1 || l.Items[0].Id != id {
			t.Errorf("ListPodSandbox(%v) = %v, %v", f, l, err)
		}
	}
	l, _ := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{LabelSelector: map[string]string{"app": "other"}}})
	if len(l.GetItems()) != 0 {
		t.Errorf("label filter matched %v", l.Items)
	}

	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		t.Fatal(err)
	}
	st = podStatus(t, d, id)
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY || st.Status.Network != nil {
		t.Errorf("after stop: state %v network %v", st.Status.State, st.Status.Network)
	}
	stopRemovePod(t, d, id)
	_, err = d.Runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: id})
	if status.Code(err) != codes.NotFound {
		t.Errorf("status of removed pod: %v, want NotFound", err)
	}
	if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: "unknown"}); err != nil {
		t.Errorf("stop of unknown pod: %v, want success", err)
	}
}

func TestTwoPodsReachEachOtherAndHostPort(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	br := framework.AddBridge(t, d)
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	server := podConfig("server")
	server.PortMappings = []*runtimeapi.PortMapping{{ContainerPort: 8080, HostPort: 18000 + int32(os.Getpid()%1000)}}
	a, b := runPod(t, d, podConfig("client")), runPod(t, d, server)
	defer stopRemovePod(t, d, a)
	defer stopRemovePod(t, d, b)

	netnsOf := func(id string) (string, string) {
		st := podStatus(t, d, id)
		var info struct{ Netns string }
		_ = json.Unmarshal([]byte(st.Info["info"]), &info)
		return info.Netns, st.Status.GetNetwork().GetIp()
	}
	nsA, _ := netnsOf(a)
	nsB, ipB := netnsOf(b)

	// A TCP server inside pod B: the listening socket lives in B's netns.
	var lis net.Listener
	if err := nsutil.Do(nsB, func() (err error) { lis, err = net.Listen("tcp", ":8080"); return err }); err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "hello from b")
			c.Close()
		}
	}()
	read := func(conn net.Conn, err error) string {
		if err != nil {
			return "dial: " + err.Error()
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(conn)
		return string(b)
	}
	var got string
	_ = nsutil.Do(nsA, func() error {
		got = read(net.DialTimeout("tcp", net.JoinHostPort(ipB, "8080"), 5*time.Second))
		return nil
	})
	if got != "hello from b" {
		t.Errorf("pod A -> pod B: %q", got)
	}
	// The hostPort through portmap, from the host side (the bridge address).
	hostPort := fmt.Sprint(server.PortMappings[0].HostPort)
	if got := read(net.DialTimeout("tcp", net.JoinHostPort(br.Gateway.String(), hostPort), 5*time.Second)); got != "hello from b" {
		t.Errorf("host -> hostPort %s: %q", hostPort, got)
	}
}

func TestHostNetworkPod(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	cfg := podConfig("hostnet")
	cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Ipc: runtimeapi.NamespaceMode_NODE}}}
	// No CNI network is configured: a host-network pod does not need one.
	id := runPod(t, d, cfg)
	st := podStatus(t, d, id)
	if st.Status.Network != nil && st.Status.Network.Ip != "" {
		t.Errorf("host-network pod has a pod IP: %v", st.Status.Network)
	}
	var info struct {
		Netns string
		Files struct{ Hostname, Resolv string }
	}
	_ = json.Unmarshal([]byte(st.Info["info"]), &info)
	host, _ := os.Hostname()
	got, _ := os.ReadFile(info.Files.Hostname)
	if info.Netns != "" || strings.TrimSpace(string(got)) != host || info.Files.Resolv == "" {
		t.Errorf("host-network pod: %+v hostname %q", info, got)
	}
	stopRemovePod(t, d, id)
}

func TestSandboxBadInput(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	framework.AddBridge(t, d)
	ctx := framework.Ctx(t)
	withLinux := func(l *runtimeapi.LinuxPodSandboxConfig) *runtimeapi.PodSandboxConfig {
		c := podConfig("bad")
		c.Linux = l
		return c
	}
	cases := []struct {
		name    string
		req     *runtimeapi.RunPodSandboxRequest
		code    codes.Code
		mention string
	}{
		{"no config", &runtimeapi.RunPodSandboxRequest{}, codes.InvalidArgument, "config"},
		{"no metadata", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{}}, codes.InvalidArgument, "metadata"},
		{"no uid", &runtimeapi.RunPodSandboxRequest{Config: &runtimeapi.PodSandboxConfig{Metadata: &runtimeapi.PodSandboxMetadata{Name: "a", Namespace: "b"}}}, codes.InvalidArgument, "metadata.uid"},
		{"unknown handler", &runtimeapi.RunPodSandboxRequest{Config: podConfig("bad"), RuntimeHandler: "kata"}, codes.InvalidArgument, "runtime_handler"},
		{"unsafe sysctl", &runtimeapi.RunPodSandboxRequest{Config: withLinux(&runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"kernel.panic": "1"}})}, codes.InvalidArgument, "kernel.panic"},
		{"smuggled sysctl", &runtimeapi.RunPodSandboxRequest{Config: withLinux(&runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net.ipv4.ip_forward": "1\nkernel.panic=1"}})}, codes.InvalidArgument, "separator"},
		{"sysctl path escape", &runtimeapi.RunPodSandboxRequest{Config: withLinux(&runtimeapi.LinuxPodSandboxConfig{Sysctls: map[string]string{"net/../../kernel/panic": "1"}})}, codes.InvalidArgument, "not a sysctl name"},
		{"bad dns server", &runtimeapi.RunPodSandboxRequest{Config: func() *runtimeapi.PodSandboxConfig {
			c := podConfig("bad")
			c.DnsConfig = &runtimeapi.DNSConfig{Servers: []string{"not-an-ip"}}
			return c
		}()}, codes.InvalidArgument, "dns_config.servers[0]"},
		{"dns option injection", &runtimeapi.RunPodSandboxRequest{Config: func() *runtimeapi.PodSandboxConfig {
			c := podConfig("bad")
			c.DnsConfig = &runtimeapi.DNSConfig{Options: []string{"ndots:1\nnameserver 6.6.6.6"}}
			return c
		}()}, codes.InvalidArgument, "dns_config.options[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Runtime.RunPodSandbox(ctx, tc.req)
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("err = %v, want %v mentioning %q", err, tc.code, tc.mention)
			}
		})
	}
	l, _ := d.Runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if len(l.GetItems()) != 0 {
		t.Errorf("refused requests left sandboxes: %v", l.Items)
	}
}

// TestSandboxCNIFailureLeavesNothing: a plugin chain that fails after IPAM
// allocated an address must leave no pod, pin, veth or reservation.
func TestSandboxCNIFailureLeavesNothing(t *testing.T) {
	binDir := t.TempDir()
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if err := os.Symlink(filepath.Join(framework.CNIBinDir, p), filepath.Join(binDir, p)); err != nil {
			t.Fatal(err)
		}
	}
	// A plugin that fails ADD and succeeds DEL, as a broken chain would.
	framework.WriteFile(t, filepath.Join(binDir, "failer"), "#!/bin/sh\nread -r _\nif [ \"$CNI_COMMAND\" = ADD ]; then echo '{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"injected failure\"}'; exit 1; fi\n[ \"$CNI_COMMAND\" = VERSION ] && echo '{\"cniVersion\":\"1.0.0\",\"supportedVersions\":[\"1.0.0\"]}'\nexit 0\n")
	if err := os.Chmod(filepath.Join(binDir, "failer"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := framework.StartDaemon(t, framework.Options{Args: []string{"--cni-bin-dir", binDir}})
	br := framework.AddBridge(t, d)
	// Replace the good conflist with one whose last plugin fails.
	conf := filepath.Join(d.CNIDir, "10-"+br.Name+".conflist")
	raw, _ := os.ReadFile(conf)
	framework.WriteFile(t, conf, strings.Replace(string(raw), `{"type":"portmap","capabilities":{"portMappings":true}}`, `{"type":"failer"}`, 1))
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })

	_, err := d.Runtime.RunPodSandbox(framework.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: podConfig("cnifail")})
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("RunPodSandbox with failing plugin: %v", err)
	}
	l, _ := d.Runtime.ListPodSandbox(framework.Ctx(t), &runtimeapi.ListPodSandboxRequest{})
	if len(l.GetItems()) != 0 {
		t.Errorf("failed run left sandboxes: %v", l.Items)
	}
	entries, _ := os.ReadDir(filepath.Join(d.State, "ns"))
	if len(entries) != 0 {
		t.Errorf("failed run left pins: %v", entries)
	}
}

func TestSandboxSurvivesDaemonCrash(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	framework.AddBridge(t, d)
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	id := runPod(t, d, podConfig("crash"))
	ip := podStatus(t, d, id).Status.GetNetwork().GetIp()
	d.Kill(t)
	d.Start(t)
	st := podStatus(t, d, id)
	if st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY || st.Status.GetNetwork().GetIp() != ip {
		t.Errorf("after crash+restart: state %v ip %v (was %s)", st.Status.State, st.Status.GetNetwork().GetIp(), ip)
	}
	// A retry of the same RunPodSandbox gets the same sandbox.
	if again := runPod(t, d, podConfig("crash")); again != id {
		t.Errorf("retried RunPodSandbox = %s, want %s", again, id)
	}
	stopRemovePod(t, d, id)
}

// TestMacvlanPod: a pod on a macvlan network whose parent is a veth the test
// creates gets an address on the parent's subnet.
func TestMacvlanPod(t *testing.T) {
	framework.RequirePlugins(t, "macvlan", "host-local")
	d := framework.StartDaemon(t, framework.Options{})
	parent := "natmv" + fmt.Sprint(os.Getpid()%100000)
	if out, err := exec.Command("ip", "link", "add", parent, "type", "veth", "peer", "name", parent+"p").CombinedOutput(); err != nil {
		t.Fatalf("create parent veth: %v %s", err, out)
	}
	d.AddCleanup(func() { _ = exec.Command("ip", "link", "del", parent).Run() })
	if out, err := exec.Command("ip", "link", "set", parent, "up").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	network := "natest-mv-" + parent
	d.AddCleanup(func() { os.RemoveAll(filepath.Join("/var/lib/cni/networks", network)) })
	framework.WriteFile(t, filepath.Join(d.CNIDir, "10-mv.conflist"), fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[
		{"type":"macvlan","master":%q,"mode":"bridge","ipam":{"type":"host-local","ranges":[[{"subnet":"192.0.2.0/24"}]]}}]}`, network, parent))
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	id := runPod(t, d, podConfig("macvlan"))
	ip := net.ParseIP(podStatus(t, d, id).Status.GetNetwork().GetIp())
	_, subnet, _ := net.ParseCIDR("192.0.2.0/24")
	if ip == nil || !subnet.Contains(ip) {
		t.Errorf("macvlan pod IP %v not on the parent's subnet %v", ip, subnet)
	}
	stopRemovePod(t, d, id)
	entries, _ := os.ReadDir(filepath.Join("/var/lib/cni/networks", network))
	for _, e := range entries {
		if net.ParseIP(e.Name()) != nil {
			t.Errorf("IP reservation %s left after removal", e.Name())
		}
	}
}

// TestUnusableHandlerRefused: each handler is probed with a trial container
// at start; one that cannot run here (Debian's crun 1.8.1 on this hybrid
// cgroup host) is left out of Status and refused with its reason.
func TestUnusableHandlerRefused(t *testing.T) {
	d := framework.StartDaemon(t, framework.Options{})
	ctx := framework.Ctx(t)
	st, err := d.Runtime.Status(ctx, &runtimeapi.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	usable := map[string]bool{}
	for _, h := range st.RuntimeHandlers {
		usable[h.Name] = true
	}
	if !usable["runc"] {
		t.Fatalf("runc not usable: %s", st.Info["handlers"])
	}
	cfg := podConfig("crun")
	cfg.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE, Pid: runtimeapi.NamespaceMode_CONTAINER}}}
	resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg, RuntimeHandler: "crun"})
	if usable["crun"] {
		if err != nil {
			t.Errorf("crun is reported usable but RunPodSandbox failed: %v", err)
		} else {
			stopRemovePod(t, d, resp.PodSandboxId)
		}
		return
	}
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "cannot run") {
		t.Errorf("RunPodSandbox with unusable crun: %v, want FailedPrecondition with the probe's reason", err)
	}
	if !strings.Contains(st.Info["handlers"], `"error"`) {
		t.Errorf("verbose handlers info does not say why crun is unusable: %s", st.Info["handlers"])
	}
}
