package oci

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/containerd/errdefs"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// defaultCgroupParent holds containers of pods that name no cgroup parent
// (crictl without kubelet); kubelet always names one.
const defaultCgroupParent = "/nodeagent"

// CgroupsPath is the OCI cgroupsPath of a container. kubelet creates and
// sizes the pod cgroup (parent); the container's own cgroup goes below it.
// With the systemd driver the parent is a slice and the path is
// "slice:prefix:name", as runc's systemd driver expects.
func CgroupsPath(parent, containerID, driver string) string {
	if driver == "systemd" {
		if parent == "" {
			parent = "system.slice"
		}
		return fmt.Sprintf("%s:nodeagent:%s", filepath.Base(parent), containerID)
	}
	if parent == "" {
		parent = defaultCgroupParent
	}
	return filepath.Join(parent, containerID)
}

// LogPath joins the pod's log directory and the container's log path,
// refusing a path that escapes the directory. No directory means no log.
func LogPath(dir, rel string) (string, error) {
	if rel == "" {
		return "", nil
	}
	if dir == "" {
		if filepath.IsAbs(rel) {
			return "", fmt.Errorf("log_path %q: absolute, but the sandbox has no log_directory: %w", rel, errdefs.ErrInvalidArgument)
		}
		return "", nil
	}
	if !filepath.IsAbs(dir) {
		return "", fmt.Errorf("sandbox log_directory %q: not an absolute path: %w", dir, errdefs.ErrInvalidArgument)
	}
	p := filepath.Join(dir, rel)
	if !strings.HasPrefix(p, filepath.Clean(dir)+"/") {
		return "", fmt.Errorf("log_path %q: escapes the log directory %q: %w", rel, dir, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

// StopSignal picks the signal that stops a container: the config's, else
// the image's STOPSIGNAL, else SIGTERM.
func StopSignal(cfg runtimeapi.Signal, image string) (syscall.Signal, error) {
	if cfg != runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT {
		name := strings.TrimPrefix(cfg.String(), "SIGNAL_")
		if sig := unix.SignalNum(name); sig != 0 {
			return sig, nil
		}
		return 0, fmt.Errorf("stop_signal %v: unknown signal: %w", cfg, errdefs.ErrInvalidArgument)
	}
	if image == "" {
		return syscall.SIGTERM, nil
	}
	return parseSignal(image)
}

// parseSignal reads an image STOPSIGNAL: "SIGQUIT", "QUIT" or "3".
func parseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("image stop signal %q: out of range: %w", s, errdefs.ErrInvalidArgument)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("image stop signal %q: unknown: %w", s, errdefs.ErrInvalidArgument)
}
