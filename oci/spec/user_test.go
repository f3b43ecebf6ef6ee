package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestResolveUser(t *testing.T) {
	i64 := func(v int64) *runtimeapi.Int64Value { return &runtimeapi.Int64Value{Value: v} }
	strict := runtimeapi.SupplementalGroupsPolicy_Strict
	for _, tc := range []struct {
		name      string
		files     map[string]string // nil: standard passwd and group
		sc        *runtimeapi.LinuxContainerSecurityContext
		imageUser string
		want      UserInfo
		err       string
	}{
		{name: "default is root with its groups",
			want: UserInfo{UID: 0, GID: 0, AdditionalGIDs: []uint32{0, 2, 10}, Home: "/root"}},
		{name: "image user name", imageUser: "app",
			want: UserInfo{UID: 1000, GID: 1000, AdditionalGIDs: []uint32{10, 29, 1000}, Home: "/home/app"}},
		{name: "image uid", imageUser: "1000",
			want: UserInfo{UID: 1000, GID: 1000, AdditionalGIDs: []uint32{10, 29, 1000}, Home: "/home/app"}},
		{name: "image uid:gid numeric keeps member groups", imageUser: "1000:50",
			want: UserInfo{UID: 1000, GID: 50, AdditionalGIDs: []uint32{10, 29, 50}, Home: "/home/app"}},
		{name: "image name:group", imageUser: "app:video",
			want: UserInfo{UID: 1000, GID: 44, AdditionalGIDs: []uint32{10, 29, 44}, Home: "/home/app"}},
		{name: "unknown uid gets gid 0", imageUser: "4242",
			want: UserInfo{UID: 4242, GID: 0, AdditionalGIDs: []uint32{0}, Home: "/"}},
		{name: "unknown name", imageUser: "ghost", err: `image config User: "ghost"`},
		{name: "unknown group name", imageUser: "app:ghosts", err: "unable to find group ghosts"},
		{name: "run_as_user beats image", imageUser: "app",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1)},
			want: UserInfo{UID: 1, GID: 1, AdditionalGIDs: []uint32{1}, Home: "/usr/sbin"}},
		{name: "run_as_username beats run_as_user",
			sc:   &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1), RunAsUsername: "app"},
			want: UserInfo{UID: 1000, GID: 1000, AdditionalGIDs: []uint32{10, 29, 1000}, Home: "/home/app"}},
		{name: "run_as_group", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1000), RunAsGroup: i64(3000)},
			want: UserInfo{UID: 1000, GID: 3000, AdditionalGIDs: []uint32{10, 29, 3000}, Home: "/home/app"}},
		{name: "run_as_group with only an image user", imageUser: "app:video",
			sc:  &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: i64(3000)},
			err: "run_as_group: set without run_as_user"},
		{name: "run_as_group alone", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsGroup: i64(5)},
			err: "linux.security_context.run_as_group"},
		{name: "negative uid", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(-1)}, err: "run_as_user: uid -1 out of range"},
		{name: "huge uid", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUser: i64(1 << 40)}, err: "out of range"},
		{name: "huge image uid", imageUser: "99999999999", err: "image config User"},
		{name: "unknown run_as_username", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "ghost"},
			err: "run_as_username"},
		{name: "username with colon", sc: &runtimeapi.LinuxContainerSecurityContext{RunAsUsername: "a:b"},
			err: "run_as_username"},
		{name: "supplemental merge", imageUser: "app",
			sc:   &runtimeapi.LinuxContainerSecurityContext{SupplementalGroups: []int64{2000, 10}},
			want: UserInfo{UID: 1000, GID: 1000, AdditionalGIDs: []uint32{10, 29, 1000, 2000}, Home: "/home/app"}},
		{name: "supplemental strict", imageUser: "app",
			sc: &runtimeapi.LinuxContainerSecurityContext{
				SupplementalGroups: []int64{2000}, SupplementalGroupsPolicy: strict},
			want: UserInfo{UID: 1000, GID: 1000, AdditionalGIDs: []uint32{1000, 2000}, Home: "/home/app"}},
		{name: "negative supplemental", sc: &runtimeapi.LinuxContainerSecurityContext{SupplementalGroups: []int64{1, -5}},
			err: "supplemental_groups[1]"},
		{name: "unknown policy", sc: &runtimeapi.LinuxContainerSecurityContext{SupplementalGroupsPolicy: 7},
			err: "supplemental_groups_policy"},
		{name: "no passwd: numeric only", files: map[string]string{"bin/sh": ""}, imageUser: "123:456",
			want: UserInfo{UID: 123, GID: 456, AdditionalGIDs: []uint32{456}, Home: "/"}},
		{name: "no passwd: names refused", files: map[string]string{"bin/sh": ""}, imageUser: "app",
			err: "unable to find user app"},
		{name: "passwd without group file", files: map[string]string{"etc/passwd": testPasswd}, imageUser: "app",
			want: UserInfo{UID: 1000, GID: 1000, AdditionalGIDs: []uint32{1000}, Home: "/home/app"}},
		{name: "passwd is a directory", files: map[string]string{"etc/passwd/x": ""}, imageUser: "app",
			err: "not a regular file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fakeRootfs(t, tc.files)
			got, err := ResolveUser(root, tc.sc, tc.imageUser)
			wantErr(t, err, tc.err)
			if tc.err == "" && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// An image whose /etc/passwd is an absolute symlink must be read as if the
// rootfs were "/", never from the host.
func TestResolveUserSymlinkStaysInRootfs(t *testing.T) {
	root := fakeRootfs(t, map[string]string{"usr/lib/passwd": "evil:x:7:7::/e:/bin/sh\n"})
	if err := os.Symlink("/usr/lib/passwd", filepath.Join(root, "etc/passwd")); err != nil {
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink("/usr/lib/passwd", filepath.Join(root, "etc/passwd")); err != nil {
			t.Fatal(err)
		}
	}
	u, err := ResolveUser(root, nil, "evil")
	if err != nil || u.UID != 7 {
		t.Fatalf("got %+v, %v; want uid 7 from the rootfs", u, err)
	}
	// A relative escape ends at the rootfs's own root.
	if err := os.Remove(filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../etc/passwd-host", filepath.Join(root, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := ResolveUser(root, nil, "root"); err == nil {
		t.Fatal("resolved root through a symlink leaving the rootfs")
	}
}

// A FIFO at /etc/passwd would block a plain open forever.
func TestResolveUserFIFO(t *testing.T) {
	root := fakeRootfs(t, map[string]string{"etc/group": testGroup})
	if err := unix.Mkfifo(filepath.Join(root, "etc/passwd"), 0o644); err != nil {
		t.Skip("mkfifo:", err)
	}
	_, err := ResolveUser(root, nil, "app")
	wantErr(t, err, "not a regular file")
}

func TestResolveUserMissingRootfs(t *testing.T) {
	_, err := ResolveUser(filepath.Join(t.TempDir(), "nope"), nil, "")
	wantErr(t, err, "rootfs")
}
