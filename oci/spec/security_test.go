package spec

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const blockMkdirProfile = `{
	"defaultAction": "SCMP_ACT_ALLOW",
	"syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
}`

// allowed reports whether the profile has an allow rule naming syscall.
func allowed(p *specs.LinuxSeccomp, syscall string) bool {
	for _, s := range p.Syscalls {
		if s.Action == specs.ActAllow && slices.Contains(s.Names, syscall) {
			return true
		}
	}
	return false
}

func TestSeccomp(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "block-mkdir.json"), []byte(blockMkdirProfile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad.json"), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(dir, "block-mkdir.json")
	prof := func(typ runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}
	}
	const (
		rd    = runtimeapi.SecurityProfile_RuntimeDefault
		unc   = runtimeapi.SecurityProfile_Unconfined
		local = runtimeapi.SecurityProfile_Localhost
	)
	for _, tc := range []struct {
		name  string
		sp    *runtimeapi.SecurityProfile
		path  string // deprecated seccomp_profile_path
		root  string
		add   []string
		check func(*testing.T, *specs.LinuxSeccomp)
		err   string
	}{
		{name: "nothing asked is unconfined", check: isNil},
		{name: "unconfined", sp: prof(unc, ""), check: isNil},
		{name: "runtime default", sp: prof(rd, ""), check: func(t *testing.T, p *specs.LinuxSeccomp) {
			if p == nil || p.DefaultAction != specs.ActErrno || !allowed(p, "read") {
				t.Fatalf("not the default profile: %+v", p)
			}
			if allowed(p, "mount") {
				t.Fatal("mount allowed without CAP_SYS_ADMIN")
			}
		}},
		{name: "default follows granted caps", sp: prof(rd, ""), add: []string{"SYS_ADMIN"}, check: func(t *testing.T, p *specs.LinuxSeccomp) {
			if !allowed(p, "mount") {
				t.Fatal("mount refused with CAP_SYS_ADMIN")
			}
		}},
		{name: "localhost absolute", sp: prof(local, abs), check: blocksMkdir},
		{name: "localhost with prefix", sp: prof(local, "localhost/"+abs), check: blocksMkdir},
		{name: "localhost relative to root", sp: prof(local, "block-mkdir.json"), root: dir, check: blocksMkdir},
		{name: "relative without root", sp: prof(local, "block-mkdir.json"), err: "must be an absolute path"},
		{name: "relative escaping root", sp: prof(local, "../etc/x.json"), root: dir, err: "must be an absolute path"},
		{name: "missing file", sp: prof(local, filepath.Join(dir, "nope.json")), err: "seccomp: profile"},
		{name: "invalid json", sp: prof(local, filepath.Join(dir, "bad.json")), err: "linux.security_context.seccomp"},
		{name: "ref without Localhost", sp: prof(rd, abs), err: "localhost_ref is only for"},
		{name: "unknown type", sp: prof(9, ""), err: "unknown profile type"},
		{name: "legacy runtime/default", path: "runtime/default", check: notNil},
		{name: "legacy docker/default", path: "docker/default", check: notNil},
		{name: "legacy unconfined", path: "unconfined", check: isNil},
		{name: "legacy localhost", path: "localhost/" + abs, check: blocksMkdir},
		{name: "legacy garbage", path: "whatever", err: "seccomp_profile_path: unknown profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			sc := in.Config.Linux.SecurityContext
			sc.Seccomp, sc.SeccompProfilePath = tc.sp, tc.path
			sc.Capabilities = &runtimeapi.Capability{AddCapabilities: tc.add}
			in.SeccompProfileRoot = tc.root
			r, err := Build(in)
			wantErr(t, err, tc.err)
			if err == nil {
				tc.check(t, r.Spec.Linux.Seccomp)
			}
		})
	}
}

func isNil(t *testing.T, p *specs.LinuxSeccomp) {
	if p != nil {
		t.Fatalf("seccomp set: %+v", p.DefaultAction)
	}
}

func notNil(t *testing.T, p *specs.LinuxSeccomp) {
	if p == nil {
		t.Fatal("no seccomp profile")
	}
}

func blocksMkdir(t *testing.T, p *specs.LinuxSeccomp) {
	if p == nil || len(p.Syscalls) != 1 || p.Syscalls[0].Action != specs.ActErrno || !slices.Contains(p.Syscalls[0].Names, "mkdirat") {
		t.Fatalf("not the mkdir-blocking profile: %+v", p)
	}
}

func TestAppArmorProfile(t *testing.T) {
	on := HostFacts{AppArmorEnabled: true, AppArmorDefaultProfile: "nodeagent-default"}
	off := HostFacts{}
	prof := func(typ runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.LinuxContainerSecurityContext {
		return &runtimeapi.LinuxContainerSecurityContext{Apparmor: &runtimeapi.SecurityProfile{ProfileType: typ, LocalhostRef: ref}}
	}
	legacy := func(s string) *runtimeapi.LinuxContainerSecurityContext {
		return &runtimeapi.LinuxContainerSecurityContext{ApparmorProfile: s}
	}
	for _, tc := range []struct {
		name       string
		sc         *runtimeapi.LinuxContainerSecurityContext
		host       HostFacts
		privileged bool
		want, err  string
	}{
		{name: "none asked, enabled: runtime default", host: on, want: "nodeagent-default"},
		{name: "none asked, disabled", host: off},
		{name: "runtime default, disabled", sc: prof(runtimeapi.SecurityProfile_RuntimeDefault, ""), host: off},
		{name: "runtime default, privileged", sc: prof(runtimeapi.SecurityProfile_RuntimeDefault, ""), host: on, privileged: true},
		{name: "unconfined", sc: prof(runtimeapi.SecurityProfile_Unconfined, ""), host: on},
		{name: "localhost", sc: prof(runtimeapi.SecurityProfile_Localhost, "localhost/my-prof"), host: on, want: "my-prof"},
		{name: "localhost, disabled", sc: prof(runtimeapi.SecurityProfile_Localhost, "my-prof"), host: off,
			err: "apparmor: profile \"my-prof\": AppArmor is not enabled"},
		{name: "localhost without name", sc: prof(runtimeapi.SecurityProfile_Localhost, ""), host: on, err: "without a name"},
		{name: "legacy localhost", sc: legacy("localhost/p"), host: on, want: "p"},
		{name: "legacy runtime/default", sc: legacy("runtime/default"), host: on, want: "nodeagent-default"},
		{name: "legacy unconfined", sc: legacy("unconfined"), host: on},
		{name: "legacy garbage", sc: legacy("x"), host: on, err: "apparmor_profile: unknown profile"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppArmorProfile(tc.sc, tc.host, tc.privileged)
			wantErr(t, err, tc.err)
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMaskedAndReadonlyPaths(t *testing.T) {
	for _, tc := range []struct {
		name             string
		masked, readonly []string
		wantM, wantRO    []string
	}{
		{name: "nothing sent keeps defaults", wantM: DefaultMaskedPaths(), wantRO: DefaultReadonlyPaths()},
		{name: "kubelet's lists", masked: []string{"/proc/kcore"}, readonly: []string{"/proc/sys"},
			wantM: []string{"/proc/kcore"}, wantRO: []string{"/proc/sys"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Config.Linux.SecurityContext.MaskedPaths = tc.masked
			in.Config.Linux.SecurityContext.ReadonlyPaths = tc.readonly
			r, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(r.Spec.Linux.MaskedPaths, tc.wantM) || !slices.Equal(r.Spec.Linux.ReadonlyPaths, tc.wantRO) {
				t.Fatalf("masked %v readonly %v", r.Spec.Linux.MaskedPaths, r.Spec.Linux.ReadonlyPaths)
			}
		})
	}
}
