package shim

import (
	"cmp"
	"context"
	"slices"
	"sync"

	"github.com/nodeagent/nodeagent/oci/shim/internal/proto"
)

// eventHub keeps the latest event of each container. A state is complete,
// so the latest one per container is all a consumer needs: a daemon that
// reconnects after a restart asks from sequence 0 and gets the current state
// of every container, including exits it missed, in O(containers) memory.
type eventHub struct {
	mu      sync.Mutex
	seq     uint64
	latest  map[string]proto.Event
	changed chan struct{} // closed and replaced on every publish
}

func newEventHub() *eventHub {
	return &eventHub{latest: map[string]proto.Event{}, changed: make(chan struct{})}
}

func (h *eventHub) publish(st State) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	h.latest[st.ID] = proto.Event{Seq: h.seq, State: st}
	close(h.changed)
	h.changed = make(chan struct{})
}

// forget drops a deleted container's event: the daemon deleted it and needs
// no news of it.
func (h *eventHub) forget(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.latest, id)
}

// wait returns the events after seq `after` in order, blocking until there
// is one or ctx ends.
func (h *eventHub) wait(ctx context.Context, after uint64) []proto.Event {
	for {
		h.mu.Lock()
		var out []proto.Event
		for _, e := range h.latest {
			if e.Seq > after {
				out = append(out, e)
			}
		}
		changed := h.changed
		h.mu.Unlock()
		if len(out) > 0 {
			slices.SortFunc(out, func(a, b proto.Event) int { return cmp.Compare(a.Seq, b.Seq) })
			return out
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}
