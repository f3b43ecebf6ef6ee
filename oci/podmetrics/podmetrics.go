// Package podmetrics turns what the stats sampler saw of a pod into the
// cAdvisor-named metrics of the CRI ListPodSandboxMetrics call, which kubelet
// serves unchanged on /metrics/cadvisor when the runtime provides them
// (KEP-2371, PodAndContainerStatsFromCRI).
//
// Compatibility choices, made so that dashboards and alerts written for
// cAdvisor keep working:
//   - names, help and label keys are cAdvisor's; the base labels are
//     container, id, image, name, namespace and pod, in that order;
//   - the pod's own cgroup is reported with container="" and image="" (the
//     series `{container!="", image!=""}` queries leave out), and the pod's
//     network with container="POD", as cAdvisor reports it on the infra
//     container;
//   - id is the cgroup path and name the runtime's container id, as
//     cAdvisor shows containerd's containers.
//
// The CRI carries values as uint64 in the metric's own unit, since kubelet
// converts them with float64() and nothing else: seconds are therefore
// whole seconds (truncated, which keeps counters monotonic). Fractions of a
// CPU second are the one thing lost against cAdvisor; kubelet's summary API
// (ListPodSandboxStats) keeps nanoseconds.
//
// Everything here is pure: inputs in, protobufs out, table-tested.
package podmetrics

import (
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/oci/stats"
)

// Labels is the cAdvisor base label set of one series.
type Labels struct {
	Container, ID, Image, Name, Namespace, Pod string
}

func (l Labels) values() []string {
	return []string{l.Container, l.ID, l.Image, l.Name, l.Namespace, l.Pod}
}

// baseKeys are the label keys of Labels.values, in order.
var baseKeys = []string{"container", "id", "image", "name", "namespace", "pod"}

// Pod is what is known of one pod at the time of the call.
type Pod struct {
	ID string
	// Labels of the pod's own cgroup (Container and Image empty).
	Labels Labels
	// Cgroup is the last sample of the pod's cgroup; nil when it has none
	// (no cgroup parent, or not sampled yet).
	Cgroup *stats.Sample
	// Network is the counters of the pod's interfaces (lo left out by the
	// caller), read live; nil for host-network pods.
	Network []stats.Interface
	// Containers are the pod's running containers.
	Containers []Container
}

// Container is what is known of one running container.
type Container struct {
	ID     string
	Labels Labels
	// Cgroup is the last sample of the container's cgroup; nil when none yet.
	Cgroup *stats.Sample
	// StartedAt is when the container started.
	StartedAt time.Time
	// Resources are the limits last applied (create or update).
	Resources *runtimeapi.LinuxContainerResources
	// Writable is the writable layer's usage; nil when not measured yet.
	Writable *Filesystem
}

// Filesystem is a writable layer's usage and the filesystem holding it.
type Filesystem struct {
	Device                     string // the mountpoint, as cAdvisor's device label
	UsedBytes                  uint64
	CapacityBytes, TotalInodes uint64
	FreeInodes                 uint64
}

// Build returns the metrics of one pod. now stamps values read live; a
// sampled value carries its sample's time (the CRI asks for the time a
// cached value was collected).
func Build(p Pod, now time.Time) *runtimeapi.PodSandboxMetrics {
	out := &runtimeapi.PodSandboxMetrics{PodSandboxId: p.ID}
	if p.Cgroup != nil {
		out.Metrics = emit(cgroupMetrics, source{labels: p.Labels, sample: p.Cgroup}, p.Cgroup.Timestamp)
	}
	if p.Network != nil {
		netLabels := p.Labels
		netLabels.Container, netLabels.Name = "POD", p.ID
		out.Metrics = append(out.Metrics, emit(networkMetrics, source{labels: netLabels, network: p.Network}, now)...)
	}
	for _, c := range p.Containers {
		cm := &runtimeapi.ContainerMetrics{ContainerId: c.ID}
		src := source{labels: c.Labels, sample: c.Cgroup, container: &c}
		if c.Cgroup != nil {
			cm.Metrics = emit(cgroupMetrics, src, c.Cgroup.Timestamp)
		}
		cm.Metrics = append(cm.Metrics, emit(containerMetrics, src, now)...)
		out.ContainerMetrics = append(out.ContainerMetrics, cm)
	}
	return out
}

// Descriptors returns the descriptor of every metric Build can emit.
func Descriptors() []*runtimeapi.MetricDescriptor {
	var out []*runtimeapi.MetricDescriptor
	for _, group := range [][]metric{cgroupMetrics, networkMetrics, containerMetrics} {
		for _, m := range group {
			out = append(out, &runtimeapi.MetricDescriptor{
				Name: m.name, Help: m.help, LabelKeys: append(append([]string(nil), baseKeys...), m.extraKeys...),
			})
		}
	}
	return out
}

// source is what a metric's values are computed from.
type source struct {
	labels    Labels
	sample    *stats.Sample     // nil outside cgroupMetrics
	network   []stats.Interface // networkMetrics only
	container *Container        // containerMetrics only
}

// value is one series of a metric: its value and the values of the metric's
// extra label keys.
type value struct {
	v     uint64
	extra []string
}

// metric is one metric: descriptor, type and how its series are computed.
type metric struct {
	name, help string
	typ        runtimeapi.MetricType
	extraKeys  []string
	values     func(source) []value
}

func emit(ms []metric, src source, ts time.Time) []*runtimeapi.Metric {
	base := src.labels.values()
	var out []*runtimeapi.Metric
	for _, m := range ms {
		for _, v := range m.values(src) {
			out = append(out, &runtimeapi.Metric{
				Name:        m.name,
				Timestamp:   ts.UnixNano(),
				MetricType:  m.typ,
				LabelValues: append(append(make([]string, 0, len(base)+len(v.extra)), base...), v.extra...),
				Value:       &runtimeapi.UInt64Value{Value: v.v},
			})
		}
	}
	return out
}

// one is a metric with a single series and no extra labels.
func one(f func(source) uint64) func(source) []value {
	return func(s source) []value { return []value{{v: f(s)}} }
}

// seconds converts nanoseconds to whole seconds (see the package comment).
func seconds(ns uint64) uint64 { return ns / uint64(time.Second) }
