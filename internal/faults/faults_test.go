package faults

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestPointKills re-runs this test binary with the variable set: the armed
// point kills it, another point does not, and the child sees no variable.
func TestPointKills(t *testing.T) {
	if os.Getenv("FAULTS_CHILD") == "1" {
		if os.Getenv(EnvVar) != "" {
			os.Exit(3) // would leak into processes the daemon starts
		}
		Point("other/point")
		Point("test/point")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPointKills$")
	cmd.Env = append(os.Environ(), "FAULTS_CHILD=1", EnvVar+"=test/point")
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("child: %v, want killed", err)
	}
	ws := ee.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("child ended with %v, want SIGKILL", ee)
	}
}

func TestPointUnarmed(t *testing.T) {
	Point("test/point") // armed is empty in the test process: returns
}

// TestPointDelays: name@duration makes the point slow instead of fatal.
func TestPointDelays(t *testing.T) {
	if os.Getenv("FAULTS_CHILD") == "1" {
		start := time.Now()
		Point("other/point")
		Point("test/point")
		if time.Since(start) < 200*time.Millisecond {
			os.Exit(4) // did not wait
		}
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestPointDelays$")
	cmd.Env = append(os.Environ(), "FAULTS_CHILD=1", EnvVar+"=test/point@200ms")
	if err := cmd.Run(); err != nil {
		t.Errorf("child: %v, want a clean exit after the delay", err)
	}
}
