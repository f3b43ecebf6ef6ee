package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// maxUserFile bounds how much of an image's /etc/passwd or /etc/group is
// read: the image is untrusted and a huge file would stall CreateContainer.
const maxUserFile = 16 << 20

// maxID is the largest uid or gid accepted; runc (and so containerd)
// refuses more than MaxInt32.
const maxID = math.MaxInt32

// ResolveUser finds the uid, gid and additional gids the container runs
// with. The user is run_as_username, else run_as_user, else the image's
// USER ("name", "uid", "uid:gid", "name:group", ...), else root; run_as_group
// overrides the group. Names are resolved in the rootfs's /etc/passwd and
// /etc/group (a missing passwd allows numeric ids only). The additional
// gids are the primary gid, the user's groups from /etc/group (policy Merge
// only) and supplemental_groups, sorted, as containerd sets them.
func ResolveUser(rootfs string, sc *runtimeapi.LinuxContainerSecurityContext, imageUser string) (UserInfo, error) {
	spec, field, err := userSpec(sc, imageUser)
	if err != nil {
		return UserInfo{}, err
	}
	if st, err := os.Stat(rootfs); err != nil || !st.IsDir() {
		return UserInfo{}, invalid("rootfs", "%q is not a directory", rootfs)
	}
	eu, err := execUser(rootfs, spec)
	if err != nil {
		return UserInfo{}, invalid(field, "%q: %v", spec, err)
	}
	u := UserInfo{UID: uint32(eu.Uid), GID: uint32(eu.Gid), Home: eu.Home}
	gids := []uint32{u.GID}
	switch p := sc.GetSupplementalGroupsPolicy(); p {
	case runtimeapi.SupplementalGroupsPolicy_Merge:
		member, err := memberGIDs(rootfs, spec, eu)
		if err != nil {
			return UserInfo{}, invalid(field, "%q: groups: %v", spec, err)
		}
		gids = append(gids, member...)
	case runtimeapi.SupplementalGroupsPolicy_Strict:
	default:
		return UserInfo{}, invalid("linux.security_context.supplemental_groups_policy", "unknown policy %d", p)
	}
	for i, g := range sc.GetSupplementalGroups() {
		if g < 0 || g > maxID {
			return UserInfo{}, invalid(fmt.Sprintf("linux.security_context.supplemental_groups[%d]", i), "gid %d out of range", g)
		}
		gids = append(gids, uint32(g))
	}
	slices.Sort(gids)
	u.AdditionalGIDs = slices.Compact(gids)
	return u, nil
}

// userSpec is the "user[:group]" string to resolve and the field it came
// from, following containerd's precedence.
func userSpec(sc *runtimeapi.LinuxContainerSecurityContext, imageUser string) (spec, field string, err error) {
	const prefix = "linux.security_context."
	switch {
	case sc.GetRunAsUsername() != "":
		spec, field = sc.GetRunAsUsername(), prefix+"run_as_username"
		if strings.Contains(spec, ":") {
			return "", "", invalid(field, "%q contains ':'", spec)
		}
	case sc.GetRunAsUser() != nil:
		uid := sc.GetRunAsUser().GetValue()
		field = prefix + "run_as_user"
		if uid < 0 || uid > maxID {
			return "", "", invalid(field, "uid %d out of range", uid)
		}
		spec = strconv.FormatInt(uid, 10)
	}
	if g := sc.GetRunAsGroup(); g != nil {
		// The CRI says the runtime MUST error on a group without a user.
		if spec == "" {
			return "", "", invalid(prefix+"run_as_group", "set without run_as_user or run_as_username")
		}
		if g.GetValue() < 0 || g.GetValue() > maxID {
			return "", "", invalid(prefix+"run_as_group", "gid %d out of range", g.GetValue())
		}
		spec += ":" + strconv.FormatInt(g.GetValue(), 10)
	}
	if spec == "" {
		spec, field = imageUser, "image config User"
	}
	return spec, field, nil
}

// execUser resolves spec against the rootfs's passwd and group files.
func execUser(rootfs, spec string) (*user.ExecUser, error) {
	passwd, err := readUserFile(rootfs, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	group, err := readUserFile(rootfs, "/etc/group")
	if err != nil {
		return nil, err
	}
	return user.GetExecUser(spec, &user.ExecUser{Home: "/"}, passwd, group)
}

// memberGIDs are the groups listing the user in /etc/group. GetExecUser
// leaves them out when the group is explicit ("user:group"), but Merge
// wants them whatever the primary group is, so the user alone is resolved
// again.
func memberGIDs(rootfs, spec string, eu *user.ExecUser) ([]uint32, error) {
	name, _, explicit := strings.Cut(spec, ":")
	if explicit {
		again, err := execUser(rootfs, name)
		if err != nil {
			return nil, err
		}
		eu = again
	}
	out := make([]uint32, 0, len(eu.Sgids))
	for _, g := range eu.Sgids {
		if g >= 0 && g <= maxID {
			out = append(out, uint32(g))
		}
	}
	return out, nil
}

// readUserFile returns the contents of name inside rootfs, symlinks
// resolved as if rootfs were "/", or a nil reader when it does not exist.
// Anything but a regular file is refused: a FIFO would block the open.
func readUserFile(rootfs, name string) (io.Reader, error) {
	h, err := pathrs.OpenInRoot(rootfs, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer h.Close()
	st, err := h.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	if st.Size() > maxUserFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxUserFile)
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxUserFile))
	if err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}
