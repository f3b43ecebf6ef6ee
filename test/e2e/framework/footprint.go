package framework

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nodeagent/nodeagent/internal/debugapi"
)

// Every test's daemon is held to the footprint it had once it answered: at
// the end, with the test's pods removed, its open fds and goroutines must
// come back within a slack of that baseline. The slack covers what may
// rightly outlive a test's calls: idle keep-alive connections to the test
// registry (one fd, two goroutines each) and streams winding down. A leak
// per pod or per call grows past it in any test that repeats the call; the
// load and churn tests hold the daemon to a tighter bound.
const (
	fdSlack        = 8
	goroutineSlack = 16
	settleWait     = 10 * time.Second
)

// daemonFootprint is what the end-of-test check compares.
type daemonFootprint struct {
	fds, goroutines int
	dump            string // the goroutine dump, for the failure message
}

func (d *Daemon) footprint(t testing.TB) (daemonFootprint, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.PID()))
	if err != nil {
		return daemonFootprint{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g, err := debugapi.NewClient(d.conn).Goroutines(ctx)
	if err != nil {
		return daemonFootprint{}, err
	}
	// Each goroutine's stack starts with "goroutine N [state]:".
	n := strings.Count("\n"+g.Dump, "\ngoroutine ")
	return daemonFootprint{fds: len(fds), goroutines: n, dump: g.Dump}, nil
}

// checkFootprint waits until the daemon is back within slack of base, and
// fails the test with the counts and the goroutines by function if it is
// not.
func (d *Daemon) checkFootprint(t testing.TB, base daemonFootprint) {
	t.Helper()
	var now daemonFootprint
	var err error
	for deadline := time.Now().Add(settleWait); ; {
		now, err = d.footprint(t)
		if err == nil && now.fds <= base.fds+fdSlack && now.goroutines <= base.goroutines+goroutineSlack {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("daemon footprint at the end: %v", err)
		return
	}
	t.Errorf("daemon did not come back to its footprint after start: %d fds (was %d), %d goroutines (was %d); goroutines by function now:\n%s",
		now.fds, base.fds, now.goroutines, base.goroutines, goroutinesByFunction(now.dump))
}

// goroutinesByFunction summarises a dump: the count of goroutines per
// function at the top of their stacks, most first.
func goroutinesByFunction(dump string) string {
	counts := map[string]int{}
	for _, block := range strings.Split(dump, "\n\n") {
		lines := strings.Split(strings.TrimSpace(block), "\n")
		if len(lines) < 2 {
			continue
		}
		fn := lines[1]
		if i := strings.LastIndexByte(fn, '('); i > 0 {
			fn = fn[:i]
		}
		counts[fn]++
	}
	var rows []string
	for fn, n := range counts {
		rows = append(rows, fmt.Sprintf("%5d %s", n, fn))
	}
	slices.Sort(rows)
	slices.Reverse(rows)
	return "  " + strings.Join(rows, "\n  ")
}
