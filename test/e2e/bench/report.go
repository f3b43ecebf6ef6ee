package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"
)

// Report is what one run measured; it is printed as a table and written as
// JSON, and `bench compare` reads two of them back.
type Report struct {
	Runtime        string         `json:"runtime"`
	RuntimeVersion string         `json:"runtimeVersion"`
	Endpoint       string         `json:"endpoint"`
	RunID          string         `json:"runID"`
	Host           string         `json:"host"`
	CPUs           int            `json:"cpus"`
	Started        time.Time      `json:"started"`
	DurationS      float64        `json:"durationSeconds"`
	Settings       map[string]any `json:"settings"`
	Latencies      []Latency      `json:"latencies"`
	Values         []Value        `json:"values"`
	Failures       []Failure      `json:"failures,omitempty"`
	Notes          []string       `json:"notes,omitempty"`
}

// Latency summarizes the samples of one timed operation, in milliseconds.
type Latency struct {
	Name   string  `json:"name"`
	N      int     `json:"n"`
	P50Ms  float64 `json:"p50Ms"`
	P99Ms  float64 `json:"p99Ms"`
	MeanMs float64 `json:"meanMs"`
	MinMs  float64 `json:"minMs"`
	MaxMs  float64 `json:"maxMs"`
}

// Value is a single figure: a memory size, a count, a wall time.
type Value struct {
	Name  string  `json:"name"`
	Unit  string  `json:"unit"`
	Value float64 `json:"value"`
}

// Failure records a scenario that did not finish; its figures are missing.
type Failure struct {
	Scenario string `json:"scenario"`
	Error    string `json:"error"`
}

func newReport(name, version string, o *options) *Report {
	host, _ := os.Hostname()
	return &Report{
		Runtime: name, RuntimeVersion: version, Endpoint: o.endpoint,
		Host: host, CPUs: runtime.NumCPU(), Started: time.Now(),
		Settings: map[string]any{
			"iterations": o.iterations, "warmup": o.warmup,
			"listPods": o.listPods, "listContainersPerPod": o.listPerPod, "listStart": o.listStart,
			"listIterations": o.listIterations, "pullIterations": o.pullIterations,
			"pullImages": splitList(o.pullImages), "concurrentImage": o.concurrentImage,
			"concurrency": o.concurrency, "concurrentRounds": o.rounds,
			"busyboxImage": o.busybox, "sandboxImage": o.sandboxImage,
			"registry": cmp.Or(o.registryListen, o.registryURL),
		},
	}
}

// AddLatency summarizes samples under name; no samples, no entry.
func (r *Report) AddLatency(name string, samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	r.Latencies = append(r.Latencies, Latency{
		Name: name, N: len(s),
		P50Ms: ms(percentile(s, 0.50)), P99Ms: ms(percentile(s, 0.99)),
		MeanMs: ms(sum / time.Duration(len(s))), MinMs: ms(s[0]), MaxMs: ms(s[len(s)-1]),
	})
}

// percentile is the nearest-rank percentile of sorted samples: with fewer
// than 100 samples p99 is the maximum, which is what it should say.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (r *Report) AddValue(name, unit string, v float64) {
	r.Values = append(r.Values, Value{Name: name, Unit: unit, Value: v})
}

func (r *Report) Fail(scenario string, err error) {
	r.Failures = append(r.Failures, Failure{Scenario: scenario, Error: err.Error()})
}

func (r *Report) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Finish stamps the run's duration.
func (r *Report) Finish() { r.DurationS = time.Since(r.Started).Seconds() }

func (r *Report) PrintTable(w io.Writer) {
	fmt.Fprintf(w, "\n== %s (%s) on %s, %d CPUs, run %s, %.0fs\n", r.Runtime, r.RuntimeVersion, r.Host, r.CPUs, r.RunID, r.DurationS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "latency (ms)\tn\tp50\tp99\tmean\tmin\t")
	for _, l := range r.Latencies {
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t\n", l.Name, l.N, l.P50Ms, l.P99Ms, l.MeanMs, l.MinMs)
	}
	tw.Flush()
	if len(r.Values) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "figure\tvalue\tunit\t")
		for _, v := range r.Values {
			fmt.Fprintf(tw, "%s\t%s\t%s\t\n", v.Name, formatValue(v.Value), v.Unit)
		}
		tw.Flush()
	}
	for _, f := range r.Failures {
		fmt.Fprintf(w, "FAILED %s: %s\n", f.Scenario, f.Error)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}

func formatValue(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d", int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}

func (r *Report) WriteJSON(path string) error {
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(raw, '\n'), 0o644)
}

func readReport(path string) (*Report, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &Report{}
	if err := json.Unmarshal(raw, r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return r, nil
}
