package spec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCapsMask(t *testing.T) {
	if m := CapMask(DefaultCaps()); m != 0xa80425fb {
		t.Fatalf("default caps mask %#x, want Docker's 0xa80425fb", m)
	}
	if got := CapsFromMask(0x000001fffeffffff); slices.Contains(got, "CAP_SYS_RESOURCE") || len(got) != len(KnownCaps)-1 {
		t.Fatalf("CapsFromMask: %v", got)
	}
	h, err := DetectHostFacts()
	if err != nil || len(h.BoundingCaps) == 0 {
		t.Fatalf("DetectHostFacts: %+v, %v", h, err)
	}
}

// probeResult is what testdata/probe reports from inside the container.
type probeResult struct {
	UID, GID        int
	Groups          []int
	CapEff          string
	NoNewPrivs      string
	Seccomp         string
	Home            string
	Hostname        string
	TimerListMasked bool   `json:"timer_list_masked"`
	RootfsWrite     string `json:"rootfs_write"`
	Mkdir           string
	ProcSysWrite    string `json:"proc_sys_write"`
	Hosts           string
}

// TestRunc runs specs built here under the real runc and checks from
// inside the container what the security tests check: no extra
// capability, masked paths, read-only rootfs, the user and groups, and a
// Localhost seccomp profile that blocks a syscall.
func TestRunc(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if os.Geteuid() != 0 || err != nil {
		t.Skip("needs root and runc")
	}
	host, err := DetectHostFacts()
	if err != nil {
		t.Fatal(err)
	}
	probe := buildProbe(t)
	profile := filepath.Join(t.TempDir(), "block-mkdir.json")
	if err := os.WriteFile(profile, []byte(blockMkdirProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	hosts := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hosts, []byte("127.0.0.1 localhost pod\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		setup func(*Input)
		check func(*testing.T, probeResult)
	}{
		{"nothing asked", func(*Input) {}, func(t *testing.T, r probeResult) {
			want := fmt.Sprintf("%016x", CapMask(DefaultCaps()))
			if r.UID != 0 || r.CapEff != want || !r.TimerListMasked || r.ProcSysWrite == "" || r.Seccomp != "0" || r.Mkdir != "" {
				t.Errorf("%+v; want uid 0, CapEff %s, /proc/timer_list masked, /proc/sys read-only, no seccomp", r, want)
			}
			if r.Home != "/root" || r.Hostname != "pod" || r.Hosts != "127.0.0.1 localhost pod\n" {
				t.Errorf("home %q hostname %q hosts %q", r.Home, r.Hostname, r.Hosts)
			}
		}},
		{"restricted", func(in *Input) {
			sc := in.Config.Linux.SecurityContext
			sc.RunAsUser, sc.RunAsGroup = &runtimeapi.Int64Value{Value: 1000}, &runtimeapi.Int64Value{Value: 3000}
			sc.SupplementalGroups = []int64{2000}
			sc.ReadonlyRootfs, sc.NoNewPrivs = true, true
			sc.Capabilities = &runtimeapi.Capability{DropCapabilities: []string{"ALL"}}
			sc.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
		}, func(t *testing.T, r probeResult) {
			if r.UID != 1000 || r.GID != 3000 || !slices.Equal(r.Groups, []int{10, 29, 2000, 3000}) {
				t.Errorf("user %d:%d %v", r.UID, r.GID, r.Groups)
			}
			if r.CapEff != "0000000000000000" || r.NoNewPrivs != "1" || r.Seccomp != "2" || !strings.Contains(r.RootfsWrite, "read-only") {
				t.Errorf("%+v; want no caps, no_new_privs, seccomp filter, read-only rootfs", r)
			}
		}},
		{"privileged", func(in *Input) {
			in.Config.Linux.SecurityContext.Privileged = true
			in.Config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
			in.Sandbox.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}}
		}, func(t *testing.T, r probeResult) {
			want := fmt.Sprintf("%016x", CapMask(host.BoundingCaps))
			if r.CapEff != want || r.TimerListMasked || r.ProcSysWrite != "" || r.Seccomp != "0" {
				t.Errorf("%+v; want CapEff %s, nothing masked, /proc/sys writable, no seccomp", r, want)
			}
		}},
		{"localhost seccomp blocks mkdir", func(in *Input) {
			in.Config.Linux.SecurityContext.Seccomp = &runtimeapi.SecurityProfile{
				ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: profile}
		}, func(t *testing.T, r probeResult) {
			if !strings.Contains(r.Mkdir, "operation not permitted") || r.RootfsWrite != "" {
				t.Errorf("mkdir %q rootfs write %q; want mkdir refused, other writes fine", r.Mkdir, r.RootfsWrite)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Namespaces = nil // new ones: no sandbox here
			in.Host = host
			in.SandboxFiles.Hosts = hosts
			in.Image.Cmd = []string{"/probe"}
			// One level: runc removes the cgroup it created, not its parents.
			in.CgroupsPath = "/nodeagent-spec-test-" + strings.ReplaceAll(t.Name(), "/", "-")
			if err := os.Mkdir(filepath.Join(in.RootfsPath, "tmp"), 0o1777); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(probe, filepath.Join(in.RootfsPath, "probe")); err != nil {
				t.Fatal(err)
			}
			tc.setup(&in)
			tc.check(t, runProbe(t, runc, in))
		})
	}
}

// runProbe builds the spec of in, runs it with runc and decodes the report.
func runProbe(t *testing.T, runc string, in Input) probeResult {
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	bundle := t.TempDir()
	b, _ := json.Marshal(r.Spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(runc, "--root", t.TempDir(), "run", "--bundle", bundle, "spec-test")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run: %v\n%s", err, stderr.String())
	}
	var res probeResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("probe output %q: %v", stdout.String(), err)
	}
	return res
}

// buildProbe compiles testdata/probe as a static binary.
func buildProbe(t *testing.T) string {
	out := filepath.Join(t.TempDir(), "probe")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/probe")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot build the probe: %v\n%s", err, b)
	}
	return out
}
