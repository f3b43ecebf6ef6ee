package oci

import (
	"path/filepath"

	"github.com/nodeagent/nodeagent/oci/stats"
)

// Usage is a container's resource usage, answered from the background
// sampler's memory.
type Usage struct {
	Sample    stats.Sample
	HasSample bool
	// NanoCores is the CPU rate between the last two samples.
	NanoCores    uint64
	HasNanoCores bool
	// WritableBytes and WritableInodes are the upper dir's usage.
	WritableBytes, WritableInodes uint64
	HasWritable                   bool
	// WritableMount is the filesystem holding the writable layer.
	WritableMount string
}

// track registers a container's cgroup and writable layer with the sampler.
func (m *Manager) track(r Record) {
	if m.sampler == nil || r.CgroupsPath == "" {
		return
	}
	m.sampler.Track(r.ID, r.CgroupsPath)
	m.sampler.TrackDir(r.ID, filepath.Join(r.Dir, "upper"))
}

// Usage returns what the sampler last saw of a container.
func (m *Manager) Usage(r Record) Usage {
	u := Usage{WritableMount: filepath.Join(m.opts.Root, "containers")}
	if m.sampler == nil {
		return u
	}
	u.Sample, u.HasSample = m.sampler.Latest(r.ID)
	if !u.HasSample && r.State == StateRunning {
		// Started since the sampler last passed (its cgroup appears
		// at start): read it now rather than answer without usage.
		u.Sample, u.HasSample = m.sampler.ReadNow(r.ID)
	}
	u.NanoCores, u.HasNanoCores = m.sampler.NanoCores(r.ID)
	u.WritableBytes, u.WritableInodes, u.HasWritable = m.sampler.DirUsage(r.ID)
	return u
}

// PodUsage returns the sampler's view of a pod's cgroup (the parent kubelet
// made), tracking it from the first request on.
func (m *Manager) PodUsage(sandboxID, cgroupParent string) Usage {
	u := Usage{}
	if m.sampler == nil || cgroupParent == "" {
		return u
	}
	key := "pod:" + sandboxID
	if u.Sample, u.HasSample = m.sampler.Latest(key); !u.HasSample {
		// First request: read now, sample in the background from here on.
		m.sampler.Track(key, cgroupParent)
		u.Sample, u.HasSample = m.sampler.ReadNow(key)
	}
	u.NanoCores, u.HasNanoCores = m.sampler.NanoCores(key)
	return u
}

// ForgetPod stops sampling a removed pod's cgroup.
func (m *Manager) ForgetPod(sandboxID string) {
	if m.sampler != nil {
		m.sampler.Untrack("pod:" + sandboxID)
	}
}
