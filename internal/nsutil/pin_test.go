package nsutil

import (
	"os"
	"path/filepath"
	"testing"
)

// A PinFrom that fails removes only what it made: the pins already in the
// directory (the pod's network namespace, which CNI DEL still needs) stay.
func TestPinFromFailureKeepsOtherPins(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("pinning namespaces needs root")
	}
	dir := filepath.Join(t.TempDir(), "ns")
	if err := PinFrom(os.Getpid(), dir, []Type{Net}); err != nil {
		t.Fatal(err)
	}
	defer Unpin(dir)
	// No such process: its namespaces cannot be pinned.
	if err := PinFrom(1<<30, dir, []Type{IPC, PID}); err == nil {
		t.Fatal("PinFrom of a process that does not exist succeeded")
	}
	if !IsPinned(filepath.Join(dir, string(Net))) {
		t.Error("the failed PinFrom removed the network namespace pin it did not make")
	}
	for _, typ := range []Type{IPC, PID} {
		if _, err := os.Stat(filepath.Join(dir, string(typ))); !os.IsNotExist(err) {
			t.Errorf("%s pin left by the failed PinFrom: %v", typ, err)
		}
	}
	// Pinning a namespace already pinned fails and leaves that pin alone.
	if err := PinFrom(os.Getpid(), dir, []Type{Net}); err == nil {
		t.Error("pinning over an existing pin succeeded")
	}
	if !IsPinned(filepath.Join(dir, string(Net))) {
		t.Error("a failed pin over an existing one removed it")
	}
	if err := Unpin(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("Unpin left %s: %v", dir, err)
	}
}
