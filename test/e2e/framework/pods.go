package framework

import (
	"os"
	"path/filepath"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/leakcheck"
)

// CgroupParent is this daemon's pod cgroup parent, unique per test, covered
// by the leak check and removed (it is kubelet's job to create it) at the end.
func (d *Daemon) CgroupParent() string {
	if d.cgroupParent != "" {
		return d.cgroupParent
	}
	d.cgroupParent = "/nodeagent-e2e-" + randHex(4)
	d.ExtendScope(func(s leakcheck.Scope) leakcheck.Scope {
		s.CgroupParents = append(s.CgroupParents, d.cgroupParent)
		return s
	})
	d.AddCleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + d.cgroupParent)
		dirs = append(dirs, "/sys/fs/cgroup"+d.cgroupParent)
		for _, dir := range dirs {
			_ = os.Remove(dir)
		}
	})
	return d.cgroupParent
}

// PodConfig is a pod as kubelet would describe it: metadata, a log
// directory under the daemon's dir and the test's cgroup parent.
func (d *Daemon) PodConfig(t testing.TB, name string) *runtimeapi.PodSandboxConfig {
	t.Helper()
	return &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "e2e", Uid: "uid-" + name + "-" + randHex(4)},
		Hostname:     name,
		LogDirectory: filepath.Join(d.Dir, "logs", name),
		Labels:       map[string]string{"app": name},
		Linux:        &runtimeapi.LinuxPodSandboxConfig{CgroupParent: d.CgroupParent()},
	}
}
