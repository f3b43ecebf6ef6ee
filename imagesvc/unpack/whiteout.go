package unpack

import (
	"strings"

	"golang.org/x/sys/unix"
)

// OCI layers mark deletions with files named ".wh.<name>" and opaque
// directories with ".wh..wh..opq" (image-spec layer.md). Overlayfs wants a
// 0:0 character device named <name> and the xattr trusted.overlay.opaque=y
// on the directory instead. Each layer is its own lower directory, so the
// conversion is purely local: nothing of a lower layer is touched.
const (
	whiteoutPrefix = ".wh."
	whiteoutMeta   = ".wh..wh."
	whiteoutOpaque = ".wh..wh..opq"
	opaqueXattr    = "trusted.overlay.opaque"
)

// whiteoutKind says what a tar entry's base name means to overlayfs.
type whiteoutKind int

const (
	notWhiteout whiteoutKind = iota
	whiteoutFile
	whiteoutOpaqueDir
	whiteoutIgnored // other ".wh..wh." names: AUFS bookkeeping, meaningless here
)

// classifyWhiteout returns the kind of base and, for a file whiteout, the
// name it deletes.
func classifyWhiteout(base string) (whiteoutKind, string) {
	switch {
	case !strings.HasPrefix(base, whiteoutPrefix):
		return notWhiteout, ""
	case base == whiteoutOpaque:
		return whiteoutOpaqueDir, ""
	case strings.HasPrefix(base, whiteoutMeta):
		return whiteoutIgnored, ""
	default:
		return whiteoutFile, base[len(whiteoutPrefix):]
	}
}

// makeWhiteout creates the overlay whiteout for name in dirfd.
func makeWhiteout(dirfd int, name string) error {
	return unix.Mknodat(dirfd, name, unix.S_IFCHR, 0)
}

// makeOpaque marks the directory dirfd opaque.
func makeOpaque(dirfd int) error {
	return unix.Fsetxattr(dirfd, opaqueXattr, []byte("y"), 0)
}
