// Package overlay mounts overlayfs over image snapshots. It is the only
// place that knows how a lower-directory list reaches the kernel: through
// the new mount API's "lowerdir+" (one fsconfig call per layer, Linux 6.8+)
// when available, else through one mount(2) option string, which the kernel
// caps at a page.
//
// It imports nothing of nodeagent, so the container side can use it (or
// take it over) without depending on the image service.
package overlay

import (
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
)

// MaxLayers is overlayfs' stacking limit (OVL_MAX_STACK).
const MaxLayers = 500

// legacyOptionLimit is the room mount(2) gives the option string: one page,
// including the terminating NUL.
const legacyOptionLimit = 4095

var plusOnce = sync.OnceValue(probeLowerdirPlus)

// LowerdirPlus reports whether the kernel takes lower directories one by
// one ("lowerdir+", Linux 6.8), lifting the one-page option limit.
func LowerdirPlus() bool { return plusOnce() }

func probeLowerdirPlus() bool {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.FsconfigSetString(fd, "lowerdir+", "/") == nil
}

// Fits reports whether lowers (plus an upper and work directory of the given
// lengths) can be mounted on this kernel.
func Fits(lowers []string, upperLen, workLen int) bool {
	if len(lowers) > MaxLayers {
		return false
	}
	if LowerdirPlus() {
		return true
	}
	return len(legacyOptions(lowers, strings.Repeat("u", upperLen), strings.Repeat("w", workLen))) <= legacyOptionLimit
}

// Mount mounts an overlay at target with lowers (top layer first). With
// upper and work empty the mount is read-only.
func Mount(target string, lowers []string, upper, work string) error {
	if len(lowers) == 0 || len(lowers) > MaxLayers {
		return fmt.Errorf("overlay of %d lower layers: %w", len(lowers), errdefs.ErrInvalidArgument)
	}
	for _, l := range lowers {
		if strings.ContainsAny(l, ",:") {
			return fmt.Errorf("overlay lower %q contains a separator: %w", l, errdefs.ErrInvalidArgument)
		}
	}
	if LowerdirPlus() {
		return mountFS(target, lowers, upper, work)
	}
	opts := legacyOptions(lowers, upper, work)
	if len(opts) > legacyOptionLimit {
		return fmt.Errorf("overlay options of %d bytes exceed a page and the kernel lacks lowerdir+: %w", len(opts), errdefs.ErrFailedPrecondition)
	}
	flags := uintptr(0)
	if upper == "" {
		flags = unix.MS_RDONLY
	}
	if err := unix.Mount("overlay", target, "overlay", flags, opts); err != nil {
		return &os.PathError{Op: "mount overlay", Path: target, Err: err}
	}
	return nil
}

func legacyOptions(lowers []string, upper, work string) string {
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if upper != "" {
		opts += ",upperdir=" + upper + ",workdir=" + work
	}
	return opts
}

// mountFS builds the mount with fsopen/fsconfig/fsmount/move_mount.
func mountFS(target string, lowers []string, upper, work string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fd)
	set := func(key, value string) error {
		if err := unix.FsconfigSetString(fd, key, value); err != nil {
			return fmt.Errorf("overlay %s=%s: %w", key, value, err)
		}
		return nil
	}
	for _, l := range lowers {
		if err := set("lowerdir+", l); err != nil {
			return err
		}
	}
	attrs := 0
	if upper != "" {
		if err := set("upperdir", upper); err != nil {
			return err
		}
		if err := set("workdir", work); err != nil {
			return err
		}
	} else {
		attrs = unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("create overlay: %w", err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount overlay: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount overlay", Path: target, Err: err}
	}
	return nil
}

// Unmount detaches the mount at target; an absent mount is not an error.
func Unmount(target string) error {
	err := unix.Unmount(target, unix.MNT_DETACH)
	if err == nil || err == unix.EINVAL || err == unix.ENOENT {
		return nil
	}
	return &os.PathError{Op: "unmount", Path: target, Err: err}
}
