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
	"strings"
	"syscall"
	"time"
)

// EnvVar names the point at which the process kills itself.
const EnvVar = "NODEAGENT_FAULT"

// armed is the point to act at, and delay what to do there: zero kills
// the process, more makes the point that slow.
var armed, delay = func() (string, time.Duration) {
	v := os.Getenv(EnvVar)
	if v == "" {
		return "", 0
	}
	_ = os.Unsetenv(EnvVar)
	if name, d, ok := strings.Cut(v, "@"); ok {
		if dur, err := time.ParseDuration(d); err == nil && dur > 0 {
			return name, dur
		}
	}
	return v, 0
}()

// Point kills the process with SIGKILL if it was started with
// NODEAGENT_FAULT=name. Names are "<area>/<moment>", e.g.
// "sandbox/after-namespaces". NODEAGENT_FAULT=name@duration (e.g.
// "container/after-rootfs@3s") makes the point wait that long instead: a
// slow step on cue, for the tests of work that outlives its caller.
func Point(name string) {
	if armed == "" || armed != name {
		return
	}
	if delay > 0 {
		time.Sleep(delay)
		return
	}
	kill()
}

func kill() {
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	for { // delivery is asynchronous: never return into the next step
		time.Sleep(time.Second)
	}
}
