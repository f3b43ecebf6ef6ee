package main

import (
	"slices"
	"testing"
)

// A daemon (1) whose shims (10, 20) run runc (11, carrying the marker too)
// and containers (12, 21 and its child 22); 30 is unrelated.
var testProcs = map[int]*proc{
	1:  {pid: 1, ppid: 0, cmdline: "daemon --state /s"},
	10: {pid: 10, ppid: 1, cmdline: "shim --state-dir /s/shims/a"},
	11: {pid: 11, ppid: 10, cmdline: "runc --bundle /s/shims/a/b create"},
	12: {pid: 12, ppid: 10, cmdline: "sleep 3600"},
	20: {pid: 20, ppid: 1, cmdline: "shim --state-dir /s/shims/b"},
	21: {pid: 21, ppid: 20, cmdline: "sh"},
	22: {pid: 22, ppid: 21, cmdline: "sleep 1"},
	30: {pid: 30, ppid: 1, cmdline: "helper"},
}

func TestShimsOf(t *testing.T) {
	for _, tc := range []struct {
		marker string
		want   []int
	}{
		{"/s/shims/a", []int{10}}, // 11 is its child: not a shim
		{"--state-dir /s/shims/", []int{10, 20}},
		{"", []int{10, 20, 30}}, // the daemon's children
	} {
		got := shimsOf(testProcs, 1, tc.marker)
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("marker %q: got %v, want %v", tc.marker, got, tc.want)
		}
	}
}

func TestDescendants(t *testing.T) {
	got := descendants(testProcs, []int{10, 20})
	slices.Sort(got)
	if want := []int{11, 12, 21, 22}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}
