package shim

import (
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"time"

	runc "github.com/containerd/go-runc"
	"golang.org/x/sys/unix"
)

// maxUnclaimed bounds the exits kept for pids nobody subscribed to yet.
const maxUnclaimed = 256

// reaper is the shim's only waiter: as a child subreaper the shim inherits
// every orphan of its containers, so it reaps with wait4(-1) and hands each
// exit to whoever subscribed to that pid. It implements go-runc's
// ProcessMonitor so that runtime commands are waited for through it too
// (os/exec's own Wait would race it).
//
// A pid cannot be reused before its process is reaped, and only the reaper
// reaps, so a pid registered while its process is unreaped is unambiguous.
type reaper struct {
	mu   sync.Mutex
	subs map[int]chan runc.Exit
	// unclaimed holds exits of pids without a subscriber, for a container
	// init that dies between the runtime's exit and Subscribe.
	unclaimed map[int]unclaimedExit
	order     []unclaimedExit
	// gen counts reaped processes; Subscribe uses it to ignore exits reaped
	// before the subscriber's process existed.
	gen uint64
}

type unclaimedExit struct {
	exit runc.Exit
	gen  uint64
}

var _ runc.ProcessMonitor = (*reaper)(nil)

// startReaper installs the SIGCHLD handler. Call it before starting any child.
func startReaper() *reaper {
	r := &reaper{subs: map[int]chan runc.Exit{}, unclaimed: map[int]unclaimedExit{}}
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs, unix.SIGCHLD)
	go func() {
		for range sigs {
			r.reapAll()
		}
	}()
	return r
}

// reapAll reaps every exited child. It holds mu throughout, so no pid is
// reaped while Start or Subscribe registers one.
func (r *reaper) reapAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.gen++
		e := runc.Exit{Pid: pid, Status: exitStatus(ws), Timestamp: time.Now()}
		if ch, ok := r.subs[pid]; ok {
			delete(r.subs, pid)
			ch <- e
			continue
		}
		r.keepUnclaimed(e)
	}
}

func (r *reaper) keepUnclaimed(e runc.Exit) {
	if len(r.order) >= maxUnclaimed {
		// Evict the oldest, unless its pid was reaped again since.
		old := r.order[0]
		if u, ok := r.unclaimed[old.exit.Pid]; ok && u.gen == old.gen {
			delete(r.unclaimed, old.exit.Pid)
		}
		r.order = r.order[1:]
	}
	u := unclaimedExit{exit: e, gen: r.gen}
	r.unclaimed[e.Pid] = u
	r.order = append(r.order, u)
}

// exitStatus is the shell convention: the exit code, or 128+signal.
func exitStatus(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// Start starts c and subscribes to its exit.
func (r *reaper) Start(c *exec.Cmd) (chan runc.Exit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := c.Start(); err != nil {
		return nil, err
	}
	ec := make(chan runc.Exit, 1)
	r.subs[c.Process.Pid] = ec
	delete(r.unclaimed, c.Process.Pid)
	return ec, nil
}

// StartLocked is Start: go-runc asks for it only with a parent-death signal,
// which the shim never sets.
func (r *reaper) StartLocked(c *exec.Cmd) (chan runc.Exit, error) { return r.Start(c) }

// Wait returns c's exit status once reaped. c.Wait then only finishes
// os/exec's bookkeeping (its stdio copies); its own wait fails with ECHILD.
func (r *reaper) Wait(c *exec.Cmd, ec chan runc.Exit) (int, error) {
	e := <-ec
	_ = c.Wait()
	return e.Status, nil
}

// Generation is the number of processes reaped so far.
func (r *reaper) Generation() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

// Subscribe returns a channel that receives pid's exit. since is a
// Generation taken before pid's process was started: an unclaimed exit of the
// same pid reaped earlier belongs to another process.
func (r *reaper) Subscribe(pid int, since uint64) chan runc.Exit {
	r.mu.Lock()
	defer r.mu.Unlock()
	ec := make(chan runc.Exit, 1)
	if u, ok := r.unclaimed[pid]; ok && u.gen > since {
		delete(r.unclaimed, pid)
		ec <- u.exit
		return ec
	}
	r.subs[pid] = ec
	return ec
}

// Unsubscribe drops a subscription that will not be waited for.
func (r *reaper) Unsubscribe(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.subs, pid)
}

// Pidfd opens a pidfd of a subscribed pid whose exit has not been delivered:
// such a pid is unreaped, so the pidfd is certainly of that process. It
// fails with ESRCH once the exit is in.
func (r *reaper) Pidfd(pid int) (*os.File, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.subs[pid]; !ok {
		return nil, unix.ESRCH
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), "pidfd"), nil
}
