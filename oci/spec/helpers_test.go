package spec

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const testPasswd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
bin:x:2:2:bin:/bin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
app:x:1000:1000:app:/home/app:/bin/sh
`

const testGroup = `root:x:0:
daemon:x:1:
bin:x:2:root,bin
wheel:x:10:root,app
app:x:1000:
audio:x:29:app
video:x:44:
staff:x:50:
nogroup:x:65534:
`

// fakeRootfs is a rootfs with the given files (path relative to the root
// -> content); a nil map gives the standard passwd and group.
func fakeRootfs(t testing.TB, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	if files == nil {
		files = map[string]string{"etc/passwd": testPasswd, "etc/group": testGroup}
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// baseInput is a kubelet-like request for a plain busybox container.
func baseInput(t testing.TB) Input {
	t.Helper()
	return baseInputAt(fakeRootfs(t, nil))
}

// baseInputAt is baseInput on an existing rootfs.
func baseInputAt(rootfs string) Input {
	return Input{
		ID:        "c1",
		SandboxID: "s1",
		Config: &runtimeapi.ContainerConfig{
			Metadata: &runtimeapi.ContainerMetadata{Name: "app"},
			Image:    &runtimeapi.ImageSpec{Image: "sha256:abc", UserSpecifiedImage: "busybox:1.36"},
			Linux: &runtimeapi.LinuxContainerConfig{
				SecurityContext: &runtimeapi.LinuxContainerSecurityContext{
					NamespaceOptions: &runtimeapi.NamespaceOption{},
				},
			},
		},
		Sandbox: &runtimeapi.PodSandboxConfig{
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "pod", Namespace: "default", Uid: "u1"},
			Hostname: "pod",
		},
		Image:      ocispec.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}},
		RootfsPath: rootfs,
		Namespaces: []specs.LinuxNamespace{
			{Type: specs.NetworkNamespace, Path: "/run/ns/s1/net"},
			{Type: specs.IPCNamespace, Path: "/run/ns/s1/ipc"},
			{Type: specs.UTSNamespace, Path: "/run/ns/s1/uts"},
		},
		CgroupsPath: "/kubepods/pod1/c1",
		Host:        HostFacts{BoundingCaps: hostCaps, HugetlbAvailable: true, SwapAvailable: true},
		DevFS:       fakeDev(),
	}
}

// hostCaps is this VM's bounding set: everything but CAP_SYS_RESOURCE.
var hostCaps = func() []string {
	var out []string
	for _, c := range KnownCaps {
		if c != "CAP_SYS_RESOURCE" {
			out = append(out, c)
		}
	}
	return out
}()

// wantErr checks err against a wanted substring ("" = no error) and that
// a bad request is classified as InvalidArgument.
func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && err == nil:
		t.Fatalf("no error, want %q", want)
	case want != "" && !strings.Contains(err.Error(), want):
		t.Fatalf("error %q does not contain %q", err, want)
	case want != "" && !errdefs.IsInvalidArgument(err):
		t.Fatalf("error %q is not InvalidArgument", err)
	}
}
