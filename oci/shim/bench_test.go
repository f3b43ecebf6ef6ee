package shim_test

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"
)

// Each benchmark reports p50 and p99 beside ns/op; the Runc ones are the
// floor: the runtime binary alone on the same bundle.

type latencies []time.Duration

func (l *latencies) time(f func()) {
	start := time.Now()
	f()
	*l = append(*l, time.Since(start))
}

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	pct := func(p int) float64 { return float64(l[(len(l)-1)*p/100].Microseconds()) / 1000 }
	b.ReportMetric(pct(50), "p50-ms")
	b.ReportMetric(pct(99), "p99-ms")
}

func BenchmarkExecSync(b *testing.B) {
	e := newEnv(b)
	c := e.launch()
	e.run(c, "bench", []string{"sleep", "1000"})
	p := *process("/bin/true")
	var l latencies
	for b.Loop() {
		l.time(func() {
			if _, _, code, err := c.ExecSync(ctx(b), "bench", p, 10*time.Second); err != nil || code != 0 {
				b.Fatalf("ExecSync: %d %v", code, err)
			}
		})
	}
	l.report(b)
}

func BenchmarkRuncExec(b *testing.B) {
	e := newEnv(b)
	bundle, _ := e.bundle("bench", []string{"sleep", "1000"})
	runc(b, e, "run", "--detach", "--bundle", bundle, "bench")
	b.Cleanup(func() { runc(b, e, "delete", "--force", "bench") })
	var l latencies
	for b.Loop() {
		l.time(func() { runc(b, e, "exec", "bench", "/bin/true") })
	}
	l.report(b)
}

func BenchmarkCreateStart(b *testing.B) {
	e := newEnv(b)
	c := e.launch()
	// One bundle for all: the containers run one after the other.
	bundle, _ := e.bundle("bench", []string{"sleep", "1000"})
	var l latencies
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("c%d", i)
		i++
		l.time(func() {
			if _, err := c.Create(ctx(b), shimCreate(id, bundle, e.logDir)); err != nil {
				b.Fatal(err)
			}
			if _, err := c.Start(ctx(b), id); err != nil {
				b.Fatal(err)
			}
		})
		b.StopTimer()
		if err := c.Delete(ctx(b), id); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	l.report(b)
}

func BenchmarkRuncRun(b *testing.B) {
	e := newEnv(b)
	bundle, _ := e.bundle("bench", []string{"sleep", "1000"})
	var l latencies
	i := 0
	for b.Loop() {
		id := fmt.Sprintf("r%d", i)
		i++
		l.time(func() { runc(b, e, "run", "--detach", "--bundle", bundle, id) })
		b.StopTimer()
		runc(b, e, "delete", "--force", id)
		b.StartTimer()
	}
	l.report(b)
}

func runc(b *testing.B, e *env, args ...string) {
	cmd := exec.Command(runcPath, append([]string{"--root", e.runtimeRoot}, args...)...)
	// Detached containers keep their stdio: /dev/null, not pipes to wait on.
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer devnull.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	if err := cmd.Run(); err != nil {
		b.Fatalf("runc %v: %v", args, err)
	}
}
