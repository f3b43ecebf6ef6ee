// Package pause is the infra process of a pod whose containers share one PID
// namespace: PID 1 of that namespace, it reaps the zombies the pod's
// processes leave and otherwise sleeps. `nodeagent pause` runs it, from the
// daemon binary bind-mounted read-only into an empty rootfs.
package pause

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// Main runs until SIGINT or SIGTERM and returns the exit code.
func Main() int {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGCHLD)
	for sig := range sigs {
		if sig != unix.SIGCHLD {
			return 0
		}
		reap()
	}
	return 0
}

// reap collects every exited child; one SIGCHLD may stand for several.
func reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
