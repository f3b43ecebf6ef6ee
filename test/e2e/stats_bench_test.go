package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// BenchmarkListContainerStats: ListContainerStats with 100 running
// containers (10 host-network pods of 10), answered from the background
// sampler's memory, and ListPodSandboxMetrics of the same pods, each with
// its p50 and p99. It also reports the daemon's CPU while it only samples
// (no RPCs), over one sampling interval.
func BenchmarkListContainerStats(b *testing.B) {
	d := framework.StartDaemon(b, framework.Options{Args: append(framework.MirrorArgs(b), "-v", "0")})
	ctx := context.Background()
	if _, err := d.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		b.Fatal(err)
	}
	for p := 0; p < 10; p++ {
		pod := benchPod(d, b, p)
		pod.Linux.SecurityContext.NamespaceOptions.Network = runtimeapi.NamespaceMode_NODE
		resp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
		if err != nil {
			b.Fatal(err)
		}
		for c := 0; c < 10; c++ {
			cr, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: resp.PodSandboxId, SandboxConfig: pod,
				Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: fmt.Sprint("c", c)},
					Image: &runtimeapi.ImageSpec{Image: busybox}, Command: []string{"sleep", "3600"}, LogPath: fmt.Sprint("c", c, ".log")}})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: cr.ContainerId}); err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu0 := cpuTicks(b, d.PID())
	time.Sleep(10 * time.Second) // one sampling interval, no RPCs
	sampling := float64(cpuTicks(b, d.PID())-cpu0) / 100 / 10 * 100
	b.Run("ListContainerStats", func(b *testing.B) {
		benchLatency(b, func() error {
			l, err := d.Runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
			if err == nil && len(l.Stats) != 100 {
				err = fmt.Errorf("%d stats", len(l.Stats))
			}
			return err
		})
		// Reported after the loop: ResetTimer drops metrics reported before it.
		b.ReportMetric(sampling, "%cpu-sampling")
	})
	b.Run("ListPodSandboxMetrics", func(b *testing.B) {
		benchLatency(b, func() error {
			l, err := d.Runtime.ListPodSandboxMetrics(ctx, &runtimeapi.ListPodSandboxMetricsRequest{})
			if err == nil && len(l.PodMetrics) != 10 {
				err = fmt.Errorf("%d pods", len(l.PodMetrics))
			}
			return err
		})
	})
}

// benchLatency runs call b.N times and reports, besides the mean, the p50
// and p99 of its latency.
func benchLatency(b *testing.B, call func() error) {
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := call(); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	at := func(q float64) float64 { return float64(took[int(q*float64(len(took)-1))].Microseconds()) / 1000 }
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
}

// cpuTicks is a process's user+system CPU time in clock ticks (1/100 s).
func cpuTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return utime + stime
}
