package spec

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// fakePropagation answers as if dirs under shared were on a shared mount,
// under slave on a slave one, and everything else on a private one.
func fakePropagation(shared, slave string) func(string) (bool, bool, error) {
	return func(p string) (bool, bool, error) {
		in := func(dir string) bool { rel, err := filepath.Rel(dir, p); return err == nil && filepath.IsLocal(rel) }
		return in(shared), in(slave), nil
	}
}

func TestBindMounts(t *testing.T) {
	host := t.TempDir()
	dir := func(name string) string {
		p := filepath.Join(host, name)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	data, shared, slave := dir("data"), dir("shared"), dir("slave")
	link := filepath.Join(host, "link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	const (
		private   = runtimeapi.MountPropagation_PROPAGATION_PRIVATE
		hostToCtr = runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
		bidir     = runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
	)
	bind := func(src, dst string, opts ...string) specs.Mount {
		return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: append([]string{"rbind"}, opts...)}
	}
	for _, tc := range []struct {
		name     string
		mounts   []*runtimeapi.Mount
		rro      bool
		want     []specs.Mount
		wantProp string
		err      string
		errClass error
	}{
		{name: "private rw", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/data"}},
			want: []specs.Mount{bind(data, "/data", "rprivate", "rw")}},
		{name: "readonly", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/data/", Readonly: true}},
			want: []specs.Mount{bind(data, "/data", "rprivate", "ro")}},
		{name: "symlink followed", mounts: []*runtimeapi.Mount{{HostPath: link, ContainerPath: "/data"}},
			want: []specs.Mount{bind(data, "/data", "rprivate", "rw")}},
		{name: "missing host path", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/a"}, {HostPath: "/nope", ContainerPath: "/b"}},
			err: `mounts[1].host_path "/nope": no such file or directory`},
		{name: "empty host path", mounts: []*runtimeapi.Mount{{ContainerPath: "/b"}}, err: "mounts[0].host_path: empty"},
		{name: "relative container path", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "data"}},
			err: "mounts[0].container_path"},
		{name: "root container path", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/"}},
			err: "mounts[0].container_path"},
		{name: "host to container on shared", mounts: []*runtimeapi.Mount{{HostPath: shared, ContainerPath: "/s", Propagation: hostToCtr}},
			want: []specs.Mount{bind(shared, "/s", "rslave", "rw")}, wantProp: "rslave"},
		{name: "host to container on slave", mounts: []*runtimeapi.Mount{{HostPath: slave, ContainerPath: "/s", Propagation: hostToCtr}},
			want: []specs.Mount{bind(slave, "/s", "rslave", "rw")}, wantProp: "rslave"},
		{name: "host to container on private", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/s", Propagation: hostToCtr}},
			err: "is on a private mount", errClass: errdefs.ErrFailedPrecondition},
		{name: "bidirectional", mounts: []*runtimeapi.Mount{
			{HostPath: slave, ContainerPath: "/a", Propagation: hostToCtr},
			{HostPath: shared, ContainerPath: "/b", Propagation: bidir}},
			want:     []specs.Mount{bind(slave, "/a", "rslave", "rw"), bind(shared, "/b", "rshared", "rw")},
			wantProp: "rshared"},
		{name: "bidirectional on slave", mounts: []*runtimeapi.Mount{{HostPath: slave, ContainerPath: "/s", Propagation: bidir}},
			err: "not on a shared mount", errClass: errdefs.ErrFailedPrecondition},
		{name: "unknown propagation", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/s", Propagation: 7}},
			err: "mounts[0].propagation"},
		{name: "rro", rro: true, mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/r", Readonly: true, RecursiveReadOnly: true}},
			want: []specs.Mount{bind(data, "/r", "rprivate", "rro")}},
		{name: "rro unsupported", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/r", Readonly: true, RecursiveReadOnly: true}},
			err: "mounts[0].recursive_read_only: not supported"},
		{name: "rro needs readonly", rro: true, mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/r", RecursiveReadOnly: true}},
			err: "recursive_read_only: requires readonly"},
		{name: "rro needs private", rro: true, mounts: []*runtimeapi.Mount{{HostPath: shared, ContainerPath: "/r", Readonly: true,
			RecursiveReadOnly: true, Propagation: hostToCtr}}, err: "requires propagation PROPAGATION_PRIVATE"},
		{name: "mount options", rro: true, mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/o",
			MountOptions: []string{"noexec", "nosuid", "rnodev"}}},
			want: []specs.Mount{bind(data, "/o", "rprivate", "rw", "noexec", "nosuid", "rnodev")}},
		{name: "recursive option unsupported", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/o",
			MountOptions: []string{"rnoexec"}}}, err: "mount_options[0]"},
		{name: "data option refused", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/o",
			MountOptions: []string{"noexec", "mode=777"}}}, err: `mounts[0].mount_options[1]: "mode=777"`},
		{name: "propagation option refused", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/o",
			MountOptions: []string{"shared"}}}, err: "mount_options[0]"},
		{name: "rw option refused", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/o", Readonly: true,
			MountOptions: []string{"rw"}}}, err: "mount_options[0]"},
		{name: "idmapped", mounts: []*runtimeapi.Mount{{HostPath: data, ContainerPath: "/i",
			UidMappings: []*runtimeapi.IDMapping{{HostId: 1000, ContainerId: 0, Length: 1}}}},
			want: []specs.Mount{{Destination: "/i", Type: "bind", Source: data, Options: []string{"rbind", "rprivate", "rw"},
				UIDMappings: []specs.LinuxIDMapping{{HostID: 1000, ContainerID: 0, Size: 1}}}}},
		{name: "parents first", mounts: []*runtimeapi.Mount{
			{HostPath: data, ContainerPath: "/a/b/c"}, {HostPath: shared, ContainerPath: "/a"}, {HostPath: slave, ContainerPath: "/a/b"}},
			want: []specs.Mount{bind(shared, "/a", "rprivate", "rw"), bind(slave, "/a/b", "rprivate", "rw"), bind(data, "/a/b/c", "rprivate", "rw")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Config.Mounts = tc.mounts
			in.Host.RROSupported = tc.rro
			in.SourcePropagation = fakePropagation(shared, slave)
			got, prop, err := BindMounts(in)
			if tc.errClass != nil {
				if err == nil || !errors.Is(err, tc.errClass) {
					t.Fatalf("error %v, want class %v", err, tc.errClass)
				}
				return
			}
			wantErr(t, err, tc.err)
			if err != nil {
				return
			}
			if !reflect.DeepEqual(got, tc.want) || prop != tc.wantProp {
				t.Fatalf("got %+v (rootfs %q)\nwant %+v (rootfs %q)", got, prop, tc.want, tc.wantProp)
			}
		})
	}
}

func TestSandboxFileMounts(t *testing.T) {
	host := t.TempDir()
	file := func(name string) string {
		p := filepath.Join(host, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	hosts, resolv, hostname, term := file("hosts"), file("resolv.conf"), file("hostname"), file("termination-log")
	shm := filepath.Join(host, "shm")
	if err := os.Mkdir(shm, 0o755); err != nil {
		t.Fatal(err)
	}
	in := baseInput(t)
	in.SandboxFiles = SandboxFiles{Hosts: hosts, Resolv: resolv, Hostname: hostname, Shm: shm}
	in.TerminationMessageHostPath = term
	in.Config.Linux.SecurityContext.ReadonlyRootfs = true
	// The user's own /etc/hosts wins over the sandbox's.
	in.Config.Mounts = []*runtimeapi.Mount{{HostPath: file("my-hosts"), ContainerPath: "/etc/hosts"}}
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]specs.Mount{}
	for _, m := range r.Spec.Mounts {
		if _, dup := got[m.Destination]; dup {
			t.Fatalf("two mounts at %s", m.Destination)
		}
		got[m.Destination] = m
	}
	for dst, want := range map[string]struct {
		src string
		ro  string
	}{
		"/etc/hosts":           {filepath.Join(host, "my-hosts"), "rw"},
		"/etc/resolv.conf":     {resolv, "ro"}, // read-only rootfs: read-only like containerd
		"/etc/hostname":        {hostname, "ro"},
		"/dev/shm":             {shm, "rw"},
		"/dev/termination-log": {term, "rw"},
	} {
		m := got[dst]
		if m.Source != want.src || m.Type != "bind" || !slices.Contains(m.Options, want.ro) {
			t.Errorf("%s: %+v, want source %s %s", dst, m, want.src, want.ro)
		}
	}
	if !r.Spec.Root.Readonly {
		t.Error("rootfs not read-only")
	}

	// A missing sandbox file is the caller's bug, reported by name.
	in.SandboxFiles.Resolv = filepath.Join(host, "gone")
	_, err = Build(in)
	wantErr(t, err, "sandbox /etc/resolv.conf.host_path")
}

// A bind over a default mount replaces it; a bind over /dev replaces every
// default mount below /dev too.
func TestMountsOverDefaults(t *testing.T) {
	in := baseInput(t)
	d := t.TempDir()
	in.Config.Mounts = []*runtimeapi.Mount{{HostPath: d, ContainerPath: "/dev"}, {HostPath: d, ContainerPath: "/proc"}}
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	var dsts []string
	for _, m := range r.Spec.Mounts {
		dsts = append(dsts, m.Destination+":"+m.Type)
	}
	want := []string{"/sys:sysfs", "/sys/fs/cgroup:cgroup", "/dev:bind", "/proc:bind"}
	if !slices.Equal(dsts, want) {
		t.Fatalf("mounts %v, want %v", dsts, want)
	}
}

func TestImageMounts(t *testing.T) {
	img := t.TempDir()
	if err := os.MkdirAll(filepath.Join(img, "usr/share/data"), 0o755); err != nil {
		t.Fatal(err)
	}
	// An image symlink pointing at the host's / must stay in the image.
	if err := os.Symlink("/", filepath.Join(img, "escape")); err != nil {
		t.Fatal(err)
	}
	resolve := func(ref string) (string, error) {
		if ref != "sha256:img" {
			return "", errdefs.ErrNotFound
		}
		return img, nil
	}
	im := func(sub string, ro bool) *runtimeapi.Mount {
		return &runtimeapi.Mount{ContainerPath: "/v", Image: &runtimeapi.ImageSpec{Image: "sha256:img"}, ImageSubPath: sub, Readonly: ro,
			UidMappings: []*runtimeapi.IDMapping{{HostId: 1, Length: 1}}}
	}
	for _, tc := range []struct {
		name    string
		m       *runtimeapi.Mount
		resolve func(string) (string, error)
		src     string
		err     string
	}{
		{name: "whole image", m: im("", true), resolve: resolve, src: img},
		{name: "sub path", m: im("usr/share/data", true), resolve: resolve, src: filepath.Join(img, "usr/share/data")},
		{name: "sub path missing", m: im("nope", true), resolve: resolve, err: "mounts[0].image_sub_path"},
		{name: "sub path through escaping symlink", m: im("escape/etc", true), resolve: resolve, err: "image_sub_path"},
		{name: "sub path dot-dot", m: im("../../etc", true), resolve: resolve, err: "image_sub_path"},
		{name: "must be read-only", m: im("", false), resolve: resolve, err: "mounts[0].readonly"},
		{name: "with host path", m: &runtimeapi.Mount{ContainerPath: "/v", HostPath: img, Readonly: true, Image: &runtimeapi.ImageSpec{Image: "x"}},
			resolve: resolve, err: "host_path: must be empty"},
		{name: "empty ref", m: &runtimeapi.Mount{ContainerPath: "/v", Readonly: true, Image: &runtimeapi.ImageSpec{}},
			resolve: resolve, err: "mounts[0].image.image: empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Config.Mounts = []*runtimeapi.Mount{tc.m}
			in.ImageMounts = tc.resolve
			got, _, err := BindMounts(in)
			wantErr(t, err, tc.err)
			if err != nil {
				return
			}
			if got[0].Source != tc.src || !slices.Contains(got[0].Options, "ro") || got[0].UIDMappings != nil {
				t.Fatalf("got %+v, want source %s, ro, no idmap", got[0], tc.src)
			}
		})
	}

	in := baseInput(t)
	in.Config.Mounts = []*runtimeapi.Mount{im("", true)}
	if _, _, err := BindMounts(in); !errdefs.IsNotImplemented(err) {
		t.Fatalf("no ImageMounts: %v, want NotImplemented", err)
	}
	in.ImageMounts = resolve
	in.Config.Mounts[0].Image.Image = "sha256:other"
	if _, _, err := BindMounts(in); !errdefs.IsNotFound(err) {
		t.Fatalf("unknown image: %v, want the resolver's NotFound", err)
	}
}

// The real mount table: / is a mount on any Linux host, and whatever its
// propagation, the lookup must not fail.
func TestHostPropagation(t *testing.T) {
	if _, _, err := hostPropagation("/"); err != nil {
		t.Fatal(err)
	}
}

// A bind over /sys must not leave the default cgroup mount under it,
// mounted first and hidden.
func TestMountOverSys(t *testing.T) {
	in := baseInput(t)
	in.Config.Mounts = []*runtimeapi.Mount{{HostPath: t.TempDir(), ContainerPath: "/sys"}}
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	validateSpec(t, r.Spec)
	for _, m := range r.Spec.Mounts {
		if m.Destination == "/sys/fs/cgroup" {
			t.Fatalf("default cgroup mount kept under a bound /sys")
		}
	}
}
