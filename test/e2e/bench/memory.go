package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// proc is what memory accounting needs of one process.
type proc struct {
	pid, ppid int
	cmdline   string
}

// readProcs lists every process with its parent and command line.
// Processes that exit while being read are skipped.
func readProcs() (map[int]*proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	procs := map[int]*proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ...": comm may hold spaces and parens,
		// so parse after its last ')'.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		procs[pid] = &proc{pid: pid, ppid: ppid, cmdline: string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '}))}
	}
	return procs, nil
}

// memKB returns VmRSS from /proc/PID/status and Pss from smaps_rollup, in
// KiB; pss is -1 when smaps_rollup cannot be read (older kernels, no
// permission). RSS counts shared pages (a binary's text, libraries) in
// every process; PSS splits them among their sharers, so it is the fair
// figure for many shims of one binary.
func memKB(pid int) (rss, pss int64, err error) {
	rss, err = fieldKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
	if err != nil {
		return 0, 0, err
	}
	pss, err = fieldKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
	if err != nil {
		pss = -1
	}
	return rss, pss, nil
}

func fieldKB(path, key string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), key); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}

// shimsOf finds the shims of a daemon: with a marker, processes whose
// command line contains it (minus their own children: a shim's runc calls
// may carry the marker too); without one, the daemon's children.
func shimsOf(procs map[int]*proc, daemon int, marker string) []int {
	isShim := func(p *proc) bool {
		if p.pid == daemon || p.pid == os.Getpid() {
			return false
		}
		if marker == "" {
			return p.ppid == daemon
		}
		return strings.Contains(p.cmdline, marker)
	}
	var out []int
	for _, p := range procs {
		if !isShim(p) {
			continue
		}
		if parent, ok := procs[p.ppid]; ok && marker != "" && isShim(parent) {
			continue
		}
		out = append(out, p.pid)
	}
	return out
}

// descendants returns every process below the given roots.
func descendants(procs map[int]*proc, roots []int) []int {
	children := map[int][]int{}
	for _, p := range procs {
		children[p.ppid] = append(children[p.ppid], p.pid)
	}
	var out []int
	queue := append([]int(nil), roots...)
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// measureMemory records the daemon's memory and, with pods running, that
// of its shims per pod. A shim's children (the pod's containers, a pause
// process if the runtime has one) are reported apart: the containers are the
// same on every runtime, so the difference is the runtime's own.
func (b *bench) measureMemory(label string, pods int) {
	if b.o.daemonPID == 0 {
		return
	}
	if err := b.recordMemory(label, pods); err != nil {
		b.report.Fail("memory "+label, err)
	}
}

func (b *bench) recordMemory(label string, pods int) error {
	procs, err := readProcs()
	if err != nil {
		return err
	}
	if _, ok := procs[b.o.daemonPID]; !ok {
		return fmt.Errorf("daemon pid %d is not running", b.o.daemonPID)
	}
	rss, pss, err := memKB(b.o.daemonPID)
	if err != nil {
		return err
	}
	prefix := "memory " + label + ": "
	b.report.AddValue(prefix+"daemon RSS", "MiB", mib(rss))
	if pss >= 0 {
		b.report.AddValue(prefix+"daemon PSS", "MiB", mib(pss))
	}
	if pods == 0 {
		return nil
	}
	shims := shimsOf(procs, b.o.daemonPID, b.o.shimMarker)
	kids := descendants(procs, shims)
	shimRSS, shimPSS, errs := sumMem(shims)
	kidRSS, kidPSS, kidErrs := sumMem(kids)
	b.report.Note("memory %s: shim children are %s", label, countComms(kids))
	b.report.AddValue(prefix+"shim processes", "", float64(len(shims)))
	b.report.AddValue(prefix+"shim RSS per pod", "MiB", mib(shimRSS/int64(pods)))
	if shimPSS >= 0 {
		b.report.AddValue(prefix+"shim PSS per pod", "MiB", mib(shimPSS/int64(pods)))
	}
	b.report.AddValue(prefix+"shim children RSS per pod", "MiB", mib(kidRSS/int64(pods)))
	if kidPSS >= 0 {
		b.report.AddValue(prefix+"shim children PSS per pod", "MiB", mib(kidPSS/int64(pods)))
	}
	if errs+kidErrs > 0 {
		b.report.Note("memory %s: %d process(es) exited while being measured", label, errs+kidErrs)
	}
	if len(shims) == 0 {
		return errors.New("no shim process found (check --shim-marker)")
	}
	return nil
}

// sumMem adds up RSS and PSS (-1 if any PSS was unreadable) of pids.
func sumMem(pids []int) (rss, pss int64, failed int) {
	for _, pid := range pids {
		r, p, err := memKB(pid)
		if err != nil {
			failed++
			continue
		}
		rss += r
		if p < 0 || pss < 0 {
			pss = -1
		} else {
			pss += p
		}
	}
	return rss, pss, failed
}

func mib(kb int64) float64 { return round2(float64(kb) / 1024) }

// countComms summarizes processes by command name ("3×sleep, 3×pause"),
// to tell what the shims' children are.
func countComms(pids []int) string {
	n := map[string]int{}
	for _, pid := range pids {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil {
			continue
		}
		n[strings.TrimSpace(string(comm))]++
	}
	names := slices.Sorted(maps.Keys(n))
	parts := make([]string, 0, len(names))
	for _, name := range names {
		parts = append(parts, fmt.Sprintf("%d×%s", n[name], name))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
