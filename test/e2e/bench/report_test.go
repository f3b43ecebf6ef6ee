package main

import (
	"testing"
	"time"
)

func TestAddLatency(t *testing.T) {
	var samples []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		samples = append(samples, time.Duration(i)*time.Millisecond)
	}
	r := &Report{}
	r.AddLatency("x", samples)
	r.AddLatency("empty", nil)
	if len(r.Latencies) != 1 {
		t.Fatalf("got %d entries, want 1 (no samples, no entry)", len(r.Latencies))
	}
	got := r.Latencies[0]
	want := Latency{Name: "x", N: 100, P50Ms: 50, P99Ms: 99, MeanMs: 50.5, MinMs: 1, MaxMs: 100}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestPercentileFewSamples(t *testing.T) {
	s := []time.Duration{1, 2, 3}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 2}, {0.99, 3}, {0.01, 1}} {
		if got := percentile(s, tc.p); got != tc.want {
			t.Errorf("percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

func TestRatio(t *testing.T) {
	for _, tc := range []struct {
		a, b float64
		want string
	}{{1, 2, "0.50"}, {0, 0, "1.00"}, {1, 0, "-"}} {
		if got := ratio(tc.a, tc.b); got != tc.want {
			t.Errorf("ratio(%v, %v) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
}
