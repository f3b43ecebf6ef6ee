// Package leakcheck is a test helper: it lists what nodeagent owns on the host
// (mounts, namespace pins, interfaces, IPAM reservations, iptables rules,
// cgroups, processes) before and after a test, and fails the test with the
// difference. This machine is shared, so it never judges by host-wide counts:
// every list is scoped to the test's own directories, names and cgroup parent.
package leakcheck

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
)

// Scope says what belongs to the code under test.
type Scope struct {
	// Dirs: mounts at or under these directories (state, root, pins).
	Dirs []string
	// LinkPrefixes: host interfaces whose names start with one of these.
	LinkPrefixes []string
	// Bridges: host interfaces enslaved to one of these bridges (pod veths).
	Bridges []string
	// CNINetworks: host-local IPAM reservations of these network names.
	CNINetworks []string
	// CgroupParents: cgroups below this relative path in every hierarchy.
	CgroupParents []string
	// ProcessMarkers: processes whose command line contains one of these.
	ProcessMarkers []string
	// IPTablesMarkers: iptables-save lines containing one of these.
	IPTablesMarkers []string
}

// Snapshot is what a Scope covered at one moment, one sorted list per kind.
type Snapshot map[string][]string

// Take lists everything the scope covers now.
func Take(s Scope) Snapshot {
	return Snapshot{
		"mount":    mounts(s.Dirs),
		"link":     links(s.LinkPrefixes, s.Bridges),
		"ipam":     ipam(s.CNINetworks),
		"cgroup":   cgroups(s.CgroupParents),
		"process":  processes(s.ProcessMarkers),
		"iptables": iptables(s.IPTablesMarkers),
	}
}

// Leaks returns what after holds that before did not, one line per item.
func Leaks(before, after Snapshot) []string {
	var out []string
	kinds := make([]string, 0, len(after))
	for k := range after {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	for _, kind := range kinds {
		for _, item := range after[kind] {
			if !slices.Contains(before[kind], item) {
				out = append(out, kind+": "+item)
			}
		}
	}
	return out
}

// Check snapshots the scope now and, when the test ends (after every cleanup
// registered later has run), fails it with anything new.
func Check(t testing.TB, s Scope) {
	t.Helper()
	before := Take(s)
	t.Cleanup(func() {
		if leaks := Leaks(before, Take(s)); len(leaks) > 0 {
			t.Errorf("leaked %d item(s):\n  %s", len(leaks), strings.Join(leaks, "\n  "))
		}
	})
}

func under(path string, dirs []string) bool {
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, strings.TrimSuffix(d, "/")+"/") {
			return true
		}
	}
	return false
}

func mounts(dirs []string) []string {
	if len(dirs) == 0 {
		return nil
	}
	infos, err := mountinfo.GetMounts(func(i *mountinfo.Info) (skip, stop bool) {
		return !under(i.Mountpoint, dirs), false
	})
	if err != nil {
		return []string{"error: " + err.Error()}
	}
	var out []string
	for _, i := range infos {
		out = append(out, fmt.Sprintf("%s (%s)", i.Mountpoint, i.FSType))
	}
	slices.Sort(out)
	return out
}

func links(prefixes, bridges []string) []string {
	if len(prefixes) == 0 && len(bridges) == 0 {
		return nil
	}
	entries, _ := os.ReadDir("/sys/class/net")
	var out []string
	for _, e := range entries {
		name := e.Name()
		master, _ := os.Readlink(filepath.Join("/sys/class/net", name, "master"))
		switch {
		case hasPrefix(name, prefixes):
			out = append(out, name)
		case master != "" && slices.Contains(bridges, filepath.Base(master)):
			out = append(out, name+" (on "+filepath.Base(master)+")")
		}
	}
	slices.Sort(out)
	return out
}

func hasPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// ipam lists host-local reservations: one file per IP, named by the IP.
func ipam(networks []string) []string {
	var out []string
	for _, n := range networks {
		entries, _ := os.ReadDir(filepath.Join("/var/lib/cni/networks", n))
		for _, e := range entries {
			if e.Name() == "lock" || strings.HasPrefix(e.Name(), "last_reserved_ip") {
				continue
			}
			out = append(out, n+"/"+e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// cgroups lists the directories below each parent in every mounted hierarchy
// (the v1 controllers and the v2 tree at /sys/fs/cgroup or .../unified).
func cgroups(parents []string) []string {
	if len(parents) == 0 {
		return nil
	}
	hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
	hierarchies = append(hierarchies, "/sys/fs/cgroup")
	var out []string
	for _, h := range hierarchies {
		for _, p := range parents {
			root := filepath.Join(h, p)
			_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
				if err != nil || !d.IsDir() || path == root {
					return nil
				}
				out = append(out, path)
				return nil
			})
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func processes(markers []string) []string {
	if len(markers) == 0 {
		return nil
	}
	self := fmt.Sprint(os.Getpid())
	entries, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range entries {
		pid := e.Name()
		if pid[0] < '0' || pid[0] > '9' || pid == self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
		if err != nil || len(raw) == 0 {
			continue
		}
		cmdline := string(bytes.ReplaceAll(bytes.TrimRight(raw, "\x00"), []byte{0}, []byte{' '}))
		for _, m := range markers {
			if strings.Contains(cmdline, m) {
				out = append(out, pid+" "+cmdline)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

func iptables(markers []string) []string {
	if len(markers) == 0 {
		return nil
	}
	raw, err := exec.Command("iptables-save").Output()
	if err != nil {
		return []string{"error: iptables-save: " + err.Error()}
	}
	var out []string
	for _, line := range strings.Split(string(raw), "\n") {
		for _, m := range markers {
			if strings.Contains(line, m) {
				out = append(out, line)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}
