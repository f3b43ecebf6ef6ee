// Package stats reads resource usage of containers and pods: cgroup counters
// (cgroup v1, hybrid and unified v2, through github.com/opencontainers/cgroups),
// network counters read inside a pod's pinned network namespace, and the disk
// usage of a container's writable layer.
//
// Reader answers one cgroup at a time, live. Sampler keeps what needs history
// or is too costly per call: the CPU rate (usage_nano_cores) between its last
// two samples, the last sample of each tracked cgroup, and directory usage, so
// RPCs can answer from memory.
//
// It owns no cgroup: it never creates, writes or removes one. It imports no
// other domain package; entering a namespace goes through internal/nsutil.
package stats
