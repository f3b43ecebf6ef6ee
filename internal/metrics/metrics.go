// Package metrics is nodeagent's Prometheus endpoint: RPC latencies by method
// and code, pod start phase timings, pull bytes and durations, objects by
// state, shims, and the daemon's own goroutines, fds and RSS. It is served
// on its own address, never on the CRI socket.
package metrics

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

const namespace = "nodeagent"

// Metrics holds the daemon's collectors.
type Metrics struct {
	registry     *prometheus.Registry
	rpcDuration  *prometheus.HistogramVec
	phase        *prometheus.HistogramVec
	pullBytes    prometheus.Counter
	pullDuration prometheus.Histogram
}

// New registers every collector, including the Go runtime's (goroutines)
// and the process's (open fds, RSS).
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		rpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "cri_rpc_duration_seconds",
			Help:    "CRI RPC latency by method and gRPC code.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method", "code"}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "pod_start_phase_duration_seconds",
			Help:    "Time spent in each phase of starting pods and containers (namespaces, cni, rootfs, runtime).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"phase"}),
		pullBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "image_pull_bytes_total", Help: "Bytes of images pulled (on disk, uncompressed).",
		}),
		pullDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "image_pull_duration_seconds", Help: "Duration of successful PullImage calls.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
	}
	m.registry.MustRegister(m.rpcDuration, m.phase, m.pullBytes, m.pullDuration,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObservePhase records one phase of a pod or container start.
func (m *Metrics) ObservePhase(phase string, d time.Duration) {
	m.phase.WithLabelValues(phase).Observe(d.Seconds())
}

// ObservePull records a finished pull.
func (m *Metrics) ObservePull(bytes uint64, d time.Duration) {
	m.pullBytes.Add(float64(bytes))
	m.pullDuration.Observe(d.Seconds())
}

// Gauge registers a gauge computed when scraped, e.g. containers by state.
// fn returns one value per label value of label.
func (m *Metrics) Gauge(name, help, label string, fn func() map[string]float64) {
	m.registry.MustRegister(&funcCollector{
		desc: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, []string{label}, nil),
		fn:   fn,
	})
}

type funcCollector struct {
	desc *prometheus.Desc
	fn   func() map[string]float64
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) {
	for label, v := range c.fn() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, label)
	}
}

// UnaryInterceptor times every unary RPC.
func (m *Metrics) UnaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	m.rpcDuration.WithLabelValues(path.Base(info.FullMethod), status.Code(err).String()).Observe(time.Since(start).Seconds())
	return resp, err
}

// Serve serves /metrics on addr until ctx ends; it returns the bound address.
func (m *Metrics) Serve(ctx context.Context, addr string) (string, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = lis.Close()
		}
	}()
	return lis.Addr().String(), nil
}
