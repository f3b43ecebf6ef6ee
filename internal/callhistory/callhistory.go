// Package callhistory keeps a bounded history of recent CRI calls per pod,
// for `crictl-lite why`: the last calls of each pod with their durations,
// codes and errors. It holds memory only; nothing is persisted, and it
// imports no nodeagent package.
package callhistory

import (
	"slices"
	"sync"
	"time"
)

// Call is one recorded call.
type Call struct {
	Method    string
	Container string
	Time      time.Time
	Duration  time.Duration
	Code      string
	Error     string
}

// Recorder holds up to PerPod calls for each of up to Pods pods; the pod
// touched least recently is forgotten first.
type Recorder struct {
	perPod, pods int

	mu   sync.Mutex
	tick uint64
	byID map[string]*ring
}

type ring struct {
	calls []Call // oldest first, at most perPod
	used  uint64 // r.tick at the last Add, for eviction
}

// New returns a Recorder keeping perPod calls for each of pods pods.
func New(perPod, pods int) *Recorder {
	return &Recorder{perPod: max(perPod, 1), pods: max(pods, 1), byID: map[string]*ring{}}
}

// Add records c under key (a sandbox id, or "namespace/name").
func (r *Recorder) Add(key string, c Call) {
	if key == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tick++
	rg, ok := r.byID[key]
	if !ok {
		if len(r.byID) >= r.pods {
			r.evict()
		}
		rg = &ring{}
		r.byID[key] = rg
	}
	rg.used = r.tick
	if len(rg.calls) == r.perPod {
		rg.calls = slices.Delete(rg.calls, 0, 1)
	}
	rg.calls = append(rg.calls, c)
}

// evict forgets the pod touched least recently. O(pods), run only when
// full: a node has at most a few hundred pods.
func (r *Recorder) evict() {
	var oldest string
	var used uint64
	for k, rg := range r.byID {
		if oldest == "" || rg.used < used {
			oldest, used = k, rg.used
		}
	}
	delete(r.byID, oldest)
}

// Calls returns a copy of key's calls, oldest first.
func (r *Recorder) Calls(key string) []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rg, ok := r.byID[key]; ok {
		return slices.Clone(rg.calls)
	}
	return nil
}
