package oci

import (
	"sync"
)

// EventType is a container lifecycle event, as GetContainerEvents reports.
type EventType int

// Container events.
const (
	EventCreated EventType = iota
	EventStarted
	EventStopped
	EventDeleted
)

// Event says a container (or, with Sandbox set, a sandbox) changed state.
type Event struct {
	Type        EventType
	ContainerID string
	SandboxID   string
	// Sandbox marks events of a pod sandbox itself; ContainerID is then
	// the sandbox id, as kubelet's evented PLEG expects.
	Sandbox bool
	At      int64 // unix nanoseconds
}

// subscriberBuffer bounds how far a slow subscriber may lag before it is
// dropped; kubelet then falls back to relisting.
const subscriberBuffer = 1024

// Bus fans events out to subscribers. Publishing never blocks: a subscriber
// that cannot keep up is disconnected (its channel closed).
type Bus struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

// NewBus returns an empty bus.
func NewBus() *Bus { return &Bus{subs: map[chan Event]struct{}{}} }

// Subscribe returns a channel of events from now on and a cancel func.
func (b *Bus) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, subscriberBuffer)
	b.mu.Lock()
	b.subs[ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	}
}

// Publish sends e to every subscriber.
func (b *Bus) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		select {
		case ch <- e:
		default:
			delete(b.subs, ch)
			close(ch)
		}
	}
}
