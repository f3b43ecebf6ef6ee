package oci

import "path/filepath"

// Layout is where the container manager keeps its state below the daemon's
// state directory. It is exported so that what reports ownership (the debug
// service) reads the one definition instead of repeating it.
type Layout struct{ State string }

// ShimDir is a pod's shim state dir. A 32-hex-digit prefix of the sandbox id
// keeps the shim's socket path well under the 108-byte limit.
func (l Layout) ShimDir(sandboxID string) string {
	return filepath.Join(l.State, "shims", sandboxID[:min(32, len(sandboxID))])
}

// InfraDir is the bundle of a pod's pause (infra) container.
func (l Layout) InfraDir(sandboxID string) string {
	return filepath.Join(l.State, "infra", sandboxID)
}

// RuntimeRoot is a handler's runtime state directory (its --root).
func (l Layout) RuntimeRoot(handler string) string {
	return filepath.Join(l.State, "runtime", handler)
}
