package callhistory

import (
	"fmt"
	"testing"
)

func TestRecorderBounds(t *testing.T) {
	tests := []struct {
		name         string
		perPod, pods int
		adds         []string // keys, in order; method = index
		key          string
		want         []string
	}{
		{"keeps order", 3, 2, []string{"a", "a"}, "a", []string{"0", "1"}},
		{"drops oldest call", 2, 2, []string{"a", "a", "a"}, "a", []string{"1", "2"}},
		{"evicts least recent pod", 2, 2, []string{"a", "b", "a", "c"}, "b", nil},
		{"keeps recently used pod", 2, 2, []string{"a", "b", "a", "c"}, "a", []string{"0", "2"}},
		{"ignores empty key", 2, 2, []string{""}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(tt.perPod, tt.pods)
			for i, k := range tt.adds {
				r.Add(k, Call{Method: fmt.Sprint(i)})
			}
			var got []string
			for _, c := range r.Calls(tt.key) {
				got = append(got, c.Method)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("Calls(%q) = %v, want %v", tt.key, got, tt.want)
			}
		})
	}
}
