package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// statsConfig samples often so that a test sees a change within a second.
const statsConfig = "[stats]\ninterval = \"500ms\"\nwritable_layer_interval = \"1s\"\n"

// crictlJSON runs upstream crictl with -o json and decodes its output, the
// protojson of a CRI response, into msg.
func crictlJSON(t *testing.T, d *framework.Daemon, msg proto.Message, args ...string) {
	t.Helper()
	// Flags go before the positional arguments (urfave/cli).
	full := append([]string{args[0], "-o", "json"}, args[1:]...)
	out, stderr, code := crictl(t, d, nil, full...)
	if code != 0 {
		t.Fatalf("crictl %v: exit %d: %s", args, code, stderr)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal([]byte(out), msg); err != nil {
		t.Fatalf("crictl %v: %v\n%s", args, err, out)
	}
}

// cgroupValue reads a cgroup v1 file of the container from inside it (runc
// mounts the container's own cgroup there); for memory.stat, key names the
// line.
func cgroupValue(t *testing.T, e *podEnv, id, file, key string) uint64 {
	t.Helper()
	out := string(e.exec(t, id, "cat", "/sys/fs/cgroup/"+file).Stdout)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if key == "" && len(f) == 1 || len(f) == 2 && f[0] == key {
			v, err := strconv.ParseUint(f[len(f)-1], 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			return v
		}
	}
	t.Fatalf("%s: no %q in %q", file, key, out)
	return 0
}

func workingSetFromCgroup(t *testing.T, e *podEnv, id string) uint64 {
	usage := cgroupValue(t, e, id, "memory/memory.usage_in_bytes", "")
	inactive := cgroupValue(t, e, id, "memory/memory.stat", "total_inactive_file")
	return usage - min(usage, inactive)
}

func near(a, b, slack uint64) bool { return a <= b+slack && b <= a+slack }

// TestStatsAsUser drives stats, pod stats, resource updates and pod metrics
// through upstream crictl, against the cgroup files, as an operator would:
// crictl stats/statsp/update/inspect/metricdescs/metricsp.
func TestStatsAsUser(t *testing.T) {
	requireCrictl(t)
	d := framework.StartDaemon(t, framework.Options{Args: framework.MirrorArgs(t), Config: statsConfig})
	br := framework.AddBridge(t, d)
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	if _, err := d.Images.PullImage(framework.Ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		t.Fatalf("PullImage: %v", err)
	}
	pod := d.PodConfig(t, "stats")
	e := &podEnv{d: d, podID: runPod(t, d, pod), pod: pod, br: br}
	id, err := e.tryCreate(t, &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: "hog"},
		Command:  []string{"sleep", "3600"},
		Linux:    &runtimeapi.LinuxContainerConfig{Resources: &runtimeapi.LinuxContainerResources{MemoryLimitInBytes: 256 << 20}},
	})
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, id)

	stats := func() *runtimeapi.ContainerStats {
		var resp runtimeapi.ListContainerStatsResponse
		crictlJSON(t, d, &resp, "stats", "--id", id)
		if len(resp.Stats) != 1 || resp.Stats[0].GetAttributes().GetId() != id {
			t.Fatalf("crictl stats --id %s: %v", id, resp.Stats)
		}
		return resp.Stats[0]
	}
	var before uint64
	waitFor(t, func() bool { before = stats().GetMemory().GetWorkingSetBytes().GetValue(); return before > 0 })

	// A memory-hungry process: 48 MiB of tmpfs pages, charged to the
	// container's cgroup and never reclaimable without swap.
	e.exec(t, id, "sh", "-c", "head -c 50331648 /dev/zero > /dev/shm/fill")
	var st *runtimeapi.ContainerStats
	waitFor(t, func() bool {
		st = stats()
		return st.GetMemory().GetWorkingSetBytes().GetValue() >= before+40<<20
	})
	// The sampler's value and the cgroup files agree (the shell reading
	// them adds a little).
	ws, fromCgroup := st.GetMemory().GetWorkingSetBytes().GetValue(), workingSetFromCgroup(t, e, id)
	if !near(ws, fromCgroup, 4<<20) {
		t.Errorf("crictl stats working set %d, cgroup files %d", ws, fromCgroup)
	}
	if got, limit := st.GetMemory().GetAvailableBytes().GetValue(), uint64(256<<20); !near(got, limit-ws, 4<<20) {
		t.Errorf("available %d, want limit - working set = %d", got, limit-ws)
	}
	cpu := cgroupValue(t, e, id, "cpuacct/cpuacct.usage", "")
	if got := st.GetCpu().GetUsageCoreNanoSeconds().GetValue(); got == 0 || got > cpu {
		t.Errorf("usage_core_nano_seconds %d, cgroup now %d", got, cpu)
	}
	if st.GetWritableLayer().GetUsedBytes() == nil {
		t.Errorf("no writable layer usage: %v", st)
	}

	// crictl statsp: the pod's cgroup holds the container's memory, and the
	// pod's interface is there.
	var ps runtimeapi.ListPodSandboxStatsResponse
	crictlJSON(t, d, &ps, "statsp", "--id", e.podID)
	if len(ps.Stats) != 1 {
		t.Fatalf("crictl statsp --id: %v", ps.Stats)
	}
	pl := ps.Stats[0].GetLinux()
	if pl.GetMemory().GetWorkingSetBytes().GetValue() < 40<<20 || len(pl.GetContainers()) != 1 {
		t.Errorf("pod stats: memory %v, %d containers", pl.GetMemory(), len(pl.GetContainers()))
	}
	if pl.GetNetwork().GetDefaultInterface().GetName() != "eth0" {
		t.Errorf("pod network: %v", pl.GetNetwork())
	}

	// crictl update changes the cgroup files, and inspect shows it.
	if _, stderr, code := crictl(t, d, nil, "update", "--memory", "100663296", "--cpu-quota", "50000", "--cpu-period", "100000", id); code != 0 {
		t.Fatalf("crictl update: %s", stderr)
	}
	if got := cgroupValue(t, e, id, "memory/memory.limit_in_bytes", ""); got != 96<<20 {
		t.Errorf("memory.limit_in_bytes after update = %d", got)
	}
	if got := cgroupValue(t, e, id, "cpu/cpu.cfs_quota_us", ""); got != 50000 {
		t.Errorf("cpu.cfs_quota_us after update = %d", got)
	}
	// crictl inspect inlines the verbose info as JSON objects, so its
	// output is plain JSON, not protojson of the response.
	out, stderr, code := crictl(t, d, nil, "inspect", "-o", "json", id)
	var insp struct {
		Status struct {
			Resources struct {
				Linux struct{ MemoryLimitInBytes, CPUQuota string }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &insp); code != 0 || err != nil {
		t.Fatalf("crictl inspect: exit %d %v %s", code, err, stderr)
	}
	if r := insp.Status.Resources.Linux; r.MemoryLimitInBytes != "100663296" || r.CPUQuota != "50000" {
		t.Errorf("crictl inspect resources after update: %+v", r)
	}

	checkPodMetrics(t, d, e.podID, id, ws)

	// Unknown ids: NotFound for one object, an empty list for a filter.
	ctx := framework.Ctx(t)
	if _, err := d.Runtime.ContainerStats(ctx, &runtimeapi.ContainerStatsRequest{ContainerId: "nosuch"}); status.Code(err) != codes.NotFound {
		t.Errorf("ContainerStats(nosuch) = %v, want NotFound", err)
	}
	if _, err := d.Runtime.PodSandboxStats(ctx, &runtimeapi.PodSandboxStatsRequest{PodSandboxId: "nosuch"}); status.Code(err) != codes.NotFound {
		t.Errorf("PodSandboxStats(nosuch) = %v, want NotFound", err)
	}
	var none runtimeapi.ListContainerStatsResponse
	crictlJSON(t, d, &none, "stats", "--id", "nosuch")
	if len(none.Stats) != 0 {
		t.Errorf("crictl stats --id nosuch: %v", none.Stats)
	}
	stopRemovePod(t, d, e.podID)
}

// checkPodMetrics reads the cAdvisor-named pod metrics with crictl
// metricdescs/metricsp, checks them against what stats reported, and turns
// them into Prometheus exposition the way kubelet's /metrics/cadvisor
// collector does: the registry refuses a series whose labels do not match
// its descriptor, or a duplicate series.
func checkPodMetrics(t *testing.T, d *framework.Daemon, podID, ctrID string, workingSet uint64) {
	t.Helper()
	var descs runtimeapi.ListMetricDescriptorsResponse
	crictlJSON(t, d, &descs, "metricdescs")
	var resp runtimeapi.ListPodSandboxMetricsResponse
	waitFor(t, func() bool {
		crictlJSON(t, d, &resp, "metricsp")
		return len(resp.PodMetrics) > 0 && len(resp.PodMetrics[0].ContainerMetrics) > 0 &&
			containerValue(resp.PodMetrics[0].ContainerMetrics[0].Metrics, "container_spec_memory_limit_bytes") == 96<<20
	})
	if len(resp.PodMetrics) != 1 || resp.PodMetrics[0].PodSandboxId != podID || resp.PodMetrics[0].ContainerMetrics[0].ContainerId != ctrID {
		t.Fatalf("crictl metricsp: %v", &resp)
	}
	cm := resp.PodMetrics[0].ContainerMetrics[0].Metrics
	if got := containerValue(cm, "container_memory_working_set_bytes"); !near(got, workingSet, 8<<20) {
		t.Errorf("container_memory_working_set_bytes %d, stats said %d", got, workingSet)
	}
	if got := containerValue(cm, "container_spec_cpu_quota"); got != 50000 {
		t.Errorf("container_spec_cpu_quota %d", got)
	}

	c := &criCollector{descs: map[string]*prometheus.Desc{}, metrics: &resp}
	for _, m := range descs.Descriptors {
		c.descs[m.Name] = prometheus.NewDesc(m.Name, m.Help, m.LabelKeys, nil)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("kubelet-style collection: %v", err)
	}
	var text bytes.Buffer
	for _, f := range families {
		if _, err := expfmt.MetricFamilyToText(&text, f); err != nil {
			t.Fatal(err)
		}
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := parser.TextToMetricFamilies(&text)
	if err != nil {
		t.Fatalf("exposition does not parse: %v", err)
	}
	for _, name := range []string{"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_network_receive_bytes_total", "container_fs_usage_bytes"} {
		if _, ok := parsed[name]; !ok {
			t.Errorf("%s missing from the exposition", name)
		}
	}
	// The series dashboards select: the container by namespace/pod/container.
	found := false
	for _, m := range parsed["container_memory_working_set_bytes"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		found = found || labels["container"] == "hog" && labels["pod"] == "stats" && labels["namespace"] != "" && labels["image"] == busybox
	}
	if !found {
		t.Errorf("no container_memory_working_set_bytes{container=\"hog\",pod=\"stats\",image=%q}:\n%s", busybox, text.String())
	}
}

func containerValue(ms []*runtimeapi.Metric, name string) uint64 {
	for _, m := range ms {
		if m.Name == name {
			return m.GetValue().GetValue()
		}
	}
	return 0
}

// criCollector is kubelet's CRI metrics collector in miniature
// (pkg/kubelet/metrics/collectors/cri_metrics.go).
type criCollector struct {
	descs   map[string]*prometheus.Desc
	metrics *runtimeapi.ListPodSandboxMetricsResponse
}

func (c *criCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c *criCollector) Collect(ch chan<- prometheus.Metric) {
	send := func(m *runtimeapi.Metric) {
		desc, ok := c.descs[m.Name]
		if !ok {
			ch <- prometheus.NewInvalidMetric(prometheus.NewInvalidDesc(fmt.Errorf("no descriptor")), fmt.Errorf("%s has no descriptor", m.Name))
			return
		}
		typ := prometheus.CounterValue
		if m.MetricType == runtimeapi.MetricType_GAUGE {
			typ = prometheus.GaugeValue
		}
		pm, err := prometheus.NewConstMetric(desc, typ, float64(m.GetValue().GetValue()), m.LabelValues...)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(desc, err)
			return
		}
		ch <- pm
	}
	for _, p := range c.metrics.PodMetrics {
		for _, m := range p.Metrics {
			send(m)
		}
		for _, cm := range p.ContainerMetrics {
			for _, m := range cm.Metrics {
				send(m)
			}
		}
	}
}
