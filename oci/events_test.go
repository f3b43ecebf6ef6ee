package oci

import "testing"

func TestBus(t *testing.T) {
	b := NewBus()
	ch, cancel := b.Subscribe()
	b.Publish(Event{Type: EventCreated, ContainerID: "a"})
	if e := <-ch; e.ContainerID != "a" || e.Type != EventCreated {
		t.Errorf("got %+v", e)
	}
	cancel()
	cancel() // idempotent
	if _, ok := <-ch; ok {
		t.Error("channel open after cancel")
	}
	b.Publish(Event{}) // no subscriber: must not block or panic

	slow, _ := b.Subscribe()
	for i := 0; i < subscriberBuffer+1; i++ {
		b.Publish(Event{ContainerID: "x"})
	}
	n := 0
	for range slow {
		n++
	}
	if n != subscriberBuffer {
		t.Errorf("slow subscriber got %d events before being dropped, want %d", n, subscriberBuffer)
	}
}
