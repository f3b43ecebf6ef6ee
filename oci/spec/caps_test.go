package spec

import (
	"slices"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCapabilities(t *testing.T) {
	withDefaults := func(extra ...string) []string { return append(DefaultCaps(), extra...) }
	without := func(list []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(c string) bool { return slices.Contains(drop, c) })
	}
	for _, tc := range []struct {
		name        string
		add, drop   []string
		ambient     []string
		privileged  bool
		want        []string
		wantAmbient []string
		err         string
	}{
		{name: "nothing asked", want: DefaultCaps()},
		{name: "add without prefix", add: []string{"net_admin"}, want: withDefaults("CAP_NET_ADMIN")},
		{name: "add with prefix", add: []string{"CAP_SYS_ADMIN"}, want: withDefaults("CAP_SYS_ADMIN")},
		{name: "add twice", add: []string{"NET_ADMIN", "CAP_NET_ADMIN", "CHOWN"}, want: withDefaults("CAP_NET_ADMIN")},
		{name: "drop", drop: []string{"CHOWN", "cap_kill"}, want: without(DefaultCaps(), "CAP_CHOWN", "CAP_KILL")},
		{name: "add ALL is the host set", add: []string{"ALL"}, want: hostCaps},
		{name: "add all lower case", add: []string{"all"}, want: hostCaps},
		{name: "add ALL drop one", add: []string{"ALL"}, drop: []string{"MKNOD"}, want: without(hostCaps, "CAP_MKNOD")},
		{name: "drop ALL add one", add: []string{"NET_BIND_SERVICE"}, drop: []string{"ALL"}, want: []string{"CAP_NET_BIND_SERVICE"}},
		{name: "drop ALL", drop: []string{"ALL"}, want: nil},
		{name: "drop wins over add", add: []string{"NET_ADMIN"}, drop: []string{"NET_ADMIN"}, want: DefaultCaps()},
		{name: "privileged ignores drops", privileged: true, drop: []string{"ALL", "CHOWN"}, want: hostCaps},
		{name: "not in host set", add: []string{"SYS_RESOURCE"}, err: "add_capabilities[0]: CAP_SYS_RESOURCE is not in this host's bounding set"},
		{name: "unknown", add: []string{"NET_ADMIN", "FLY"}, err: "add_capabilities[1]: unknown capability \"FLY\""},
		{name: "unknown drop", drop: []string{"FLY"}, err: "drop_capabilities[0]"},
		{name: "ambient", ambient: []string{"NET_BIND_SERVICE", "NET_ADMIN"},
			want: withDefaults("CAP_NET_ADMIN"), wantAmbient: []string{"CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN"}},
		{name: "ambient dropped", ambient: []string{"NET_ADMIN"}, drop: []string{"NET_ADMIN"}, want: DefaultCaps()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &runtimeapi.Capability{AddCapabilities: tc.add, DropCapabilities: tc.drop, AddAmbientCapabilities: tc.ambient}
			got, err := Capabilities(c, tc.privileged, hostCaps)
			wantErr(t, err, tc.err)
			if err != nil {
				return
			}
			for name, set := range map[string][]string{"bounding": got.Bounding, "effective": got.Effective, "permitted": got.Permitted} {
				if !slices.Equal(set, tc.want) {
					t.Errorf("%s = %v, want %v", name, set, tc.want)
				}
			}
			if !slices.Equal(got.Ambient, tc.wantAmbient) || !slices.Equal(got.Inheritable, tc.wantAmbient) {
				t.Errorf("ambient %v inheritable %v, want %v", got.Ambient, got.Inheritable, tc.wantAmbient)
			}
		})
	}
}

// Without a known host set, ALL means every capability this package knows.
func TestCapabilitiesUnknownHost(t *testing.T) {
	got, err := Capabilities(&runtimeapi.Capability{AddCapabilities: []string{"ALL"}}, false, nil)
	if err != nil || !slices.Equal(got.Bounding, KnownCaps) {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestPrivilegedBuild(t *testing.T) {
	in := baseInput(t)
	in.Sandbox.Linux = &runtimeapi.LinuxPodSandboxConfig{SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{Privileged: true}}
	sc := in.Config.Linux.SecurityContext
	sc.Privileged = true
	sc.MaskedPaths = DefaultMaskedPaths()
	sc.Seccomp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	in.Host.AppArmorEnabled, in.Host.AppArmorDefaultProfile = true, "nodeagent-default"
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Spec
	if !slices.Equal(s.Process.Capabilities.Bounding, hostCaps) {
		t.Errorf("caps %v", s.Process.Capabilities.Bounding)
	}
	if s.Linux.Seccomp != nil || s.Process.ApparmorProfile != "" || s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("privileged kept confinement: seccomp %v apparmor %q masked %v ro %v",
			s.Linux.Seccomp != nil, s.Process.ApparmorProfile, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	for _, m := range s.Mounts {
		if (m.Type == "sysfs" || m.Type == "cgroup") && slices.Contains(m.Options, "ro") {
			t.Errorf("%s still read-only: %v", m.Destination, m.Options)
		}
	}
	rules := s.Linux.Resources.Devices
	if len(rules) != 1 || !rules[0].Allow || rules[0].Access != "rwm" || rules[0].Type != "" {
		t.Errorf("device rules %+v, want allow all", rules)
	}
	var paths []string
	for _, d := range s.Linux.Devices {
		paths = append(paths, d.Path)
	}
	want := []string{"/dev/dri/card0", "/dev/dri/renderD128", "/dev/fuse", "/dev/null", "/dev/sda", "/dev/zero"}
	if !slices.Equal(paths, want) {
		t.Errorf("host devices %v, want %v", paths, want)
	}

	in.Sandbox.Linux = nil
	_, err = Build(in)
	wantErr(t, err, "privileged: the pod sandbox is not privileged")
}
