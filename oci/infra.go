package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/oci/spec"
)

// The infra (pause) process of a pod that shares one PID namespace runs as
// a container of the pod's shim whose id is the sandbox id. It is not a CRI
// container: it never appears in ListContainers.

// infraDir is the infra container's bundle.
func (m *Manager) infraDir(sandboxID string) string {
	return Layout{m.opts.State}.InfraDir(sandboxID)
}

// StartInfra starts the pod's pause process in a new PID namespace, joined
// to the pod's other namespaces, and returns its pid so the caller can pin
// the PID namespace.
func (m *Manager) StartInfra(ctx context.Context, sandboxID, handler string, cfg *runtimeapi.PodSandboxConfig, namespaces map[string]string) (int, error) {
	sb := SandboxInfo{ID: sandboxID, Config: cfg, Handler: handler}
	for typ, path := range namespaces {
		sb.Namespaces = append(sb.Namespaces, specs.LinuxNamespace{Type: NamespaceType(typ), Path: path})
	}
	h, err := m.Handler(sb.Handler)
	if err != nil {
		return 0, err
	}
	dir := m.infraDir(sb.ID)
	if err := makeInfraRootfs(filepath.Join(dir, "rootfs")); err != nil {
		return 0, err
	}
	if err := writeSpec(dir, m.infraSpec(sb)); err != nil {
		return 0, err
	}
	sh, err := m.shims.get(ctx, sb.ID, h)
	if err != nil {
		return 0, err
	}
	var pid int
	_, err = sh.Create(ctx, shimCreateInfra(sb.ID, dir))
	if err == nil { // the runtime makes the init at start
		pid, err = sh.Start(ctx, sb.ID)
	}
	if err != nil {
		_ = m.StopInfra(ctx, sb.ID)
		return 0, fmt.Errorf("start pod infra process: %w", err)
	}
	return pid, nil
}

// PrelaunchShim starts launching the pod's shim in the background while the
// sandbox is still being set up, so that its first container does not wait
// for it. StopInfra ends it again if the pod gets no container.
func (m *Manager) PrelaunchShim(sandboxID, handler string) {
	if h, err := m.Handler(handler); err == nil {
		m.shims.prelaunch(sandboxID, h)
	}
}

// StopInfra kills and deletes the pod's pause process, if any. A pod left
// with no container needs no shim either, so it is ended too: a
// RunPodSandbox undone after its infra started leaves no shim behind.
func (m *Manager) StopInfra(ctx context.Context, sandboxID string) error {
	if sh, err := m.shims.lookup(sandboxID); err == nil {
		if err := sh.Kill(ctx, sandboxID, syscall.SIGKILL, true); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
		if err := sh.Delete(ctx, sandboxID); err != nil && !errdefs.IsNotFound(err) {
			return err
		}
	}
	// An infra process outlives its shim's death (see orphans.go); a new
	// shim of the pod does not know it.
	if err := m.reapOrphan(ctx, sandboxID); err != nil {
		return err
	}
	if err := os.RemoveAll(m.infraDir(sandboxID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if len(m.ListSandbox(sandboxID)) == 0 {
		// A container that raced in keeps it: the shim refuses to end
		// while it has one.
		return m.shims.shutdown(ctx, sandboxID)
	}
	return nil
}

// infraSpec: the daemon binary read-only in an empty read-only rootfs, no
// capabilities, an unprivileged user, the pod's namespaces plus a new PID one.
func (m *Manager) infraSpec(sb SandboxInfo) *specs.Spec {
	s := spec.DefaultSpec()
	s.Root = &specs.Root{Path: "rootfs", Readonly: true}
	s.Process.Args = []string{"/pause", "pause"}
	s.Process.User = specs.User{UID: 65535, GID: 65535}
	s.Process.Capabilities = &specs.LinuxCapabilities{}
	s.Process.NoNewPrivileges = true
	s.Process.Rlimits = nil // inherit: this host may not raise RLIMIT_NOFILE
	s.Hostname = ""
	s.Mounts = append(s.Mounts, specs.Mount{Destination: "/pause", Type: "bind", Source: m.opts.Binary, Options: []string{"rbind", "ro", "nosuid", "nodev"}})
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.PIDNamespace}}
	for _, n := range sb.Namespaces {
		if n.Type != specs.PIDNamespace {
			ns = append(ns, n)
		}
	}
	s.Linux.Namespaces = ns
	s.Linux.CgroupsPath = CgroupsPath(sb.Config.GetLinux().GetCgroupParent(), "infra-"+sb.ID, m.opts.CgroupDriver)
	return s
}

// makeInfraRootfs creates the empty rootfs with its mountpoints made by us:
// in a user-namespace pod, root inside cannot create them in a directory the
// host's root owns.
func makeInfraRootfs(rootfs string) error {
	for _, d := range []string{"proc", "dev", "sys"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return fmt.Errorf("create infra rootfs: %w", err)
		}
	}
	f, err := os.OpenFile(filepath.Join(rootfs, "pause"), os.O_CREATE|os.O_RDONLY, 0o555)
	if err != nil {
		return fmt.Errorf("create infra rootfs: %w", err)
	}
	return f.Close()
}

// NamespaceType maps a /proc/<pid>/ns name to its OCI namespace type.
func NamespaceType(name string) specs.LinuxNamespaceType {
	switch name {
	case "net":
		return specs.NetworkNamespace
	case "ipc":
		return specs.IPCNamespace
	case "uts":
		return specs.UTSNamespace
	case "pid":
		return specs.PIDNamespace
	case "user":
		return specs.UserNamespace
	}
	return specs.LinuxNamespaceType(name)
}
