// Package faults holds crash points for recovery tests. A daemon started with
// NODEAGENT_FAULT=<name> kills itself with SIGKILL, as a power cut or an OOM
// kill would, when it reaches the point of that name; the tests then restart
// it without the variable and check that the interrupted work was finished or
// undone. Without the variable a point costs one comparison with an empty
// string.
//
// The variable is read once, at start, and removed from the environment so
// that processes the daemon starts (shims, helpers, runc) never inherit it.
//
// It imports nothing of nodeagent; every package may use it.
package faults

import (
	"os"
	"syscall"
	"time"
)

// EnvVar names the point at which the process kills itself.
const EnvVar = "NODEAGENT_FAULT"

var armed = func() string {
	v := os.Getenv(EnvVar)
	if v != "" {
		_ = os.Unsetenv(EnvVar)
	}
	return v
}()

// Point kills the process with SIGKILL if it was started with
// NODEAGENT_FAULT=name. Names are "<area>/<moment>", e.g.
// "sandbox/after-namespaces".
func Point(name string) {
	if armed != "" && armed == name {
		kill()
	}
}

func kill() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	for { // delivery is asynchronous: never return into the next step
		time.Sleep(time.Second)
	}
}
