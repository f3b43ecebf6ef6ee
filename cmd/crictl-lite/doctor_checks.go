package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/sys/mountinfo"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/nodeagent/nodeagent/internal/debugapi"
)

// ownership indexes what the daemon's records own.
type ownership struct {
	o          *debugapi.OwnedResponse
	sandboxes  map[string]debugapi.OwnedSandbox
	containers map[string]debugapi.OwnedContainer
	dirs       []string          // directories records own (mounts below are fine)
	hostIfs    map[string]bool   // host interfaces named in our CNI results
	strayPins  map[string]string // sandbox id -> pin dir no record owns
}

func newOwnership(o *debugapi.OwnedResponse) *ownership {
	w := &ownership{o: o, sandboxes: map[string]debugapi.OwnedSandbox{}, containers: map[string]debugapi.OwnedContainer{},
		hostIfs: map[string]bool{}, strayPins: map[string]string{}}
	for _, s := range o.Sandboxes {
		w.sandboxes[s.ID] = s
		w.dirs = append(w.dirs, s.NSDir, s.Dir, s.ShimDir)
		if s.InfraDir != "" {
			w.dirs = append(w.dirs, s.InfraDir)
		}
		for _, i := range s.HostInterfaces {
			w.hostIfs[i] = true
		}
	}
	for _, c := range o.Containers {
		w.containers[c.ID] = c
		w.dirs = append(w.dirs, c.Dir)
	}
	entries, _ := os.ReadDir(w.nsRoot())
	for _, e := range entries {
		if _, ok := w.sandboxes[e.Name()]; !ok {
			w.strayPins[e.Name()] = filepath.Join(w.nsRoot(), e.Name())
		}
	}
	return w
}

func (w *ownership) nsRoot() string { return filepath.Join(w.o.State, "ns") }

// under reports whether p is dir or below it.
func under(p, dir string) bool {
	return dir != "" && (p == dir || strings.HasPrefix(p, strings.TrimSuffix(dir, "/")+"/"))
}

func underAny(p string, dirs []string) bool {
	return slices.ContainsFunc(dirs, func(d string) bool { return under(p, d) })
}

// checkMounts: mounts under our root and state dirs that no record owns.
// Pins are checkPins' business.
func checkMounts(w *ownership) []finding {
	infos, err := mountinfo.GetMounts(func(i *mountinfo.Info) (bool, bool) {
		mine := (under(i.Mountpoint, w.o.Root) || under(i.Mountpoint, w.o.State)) &&
			i.Mountpoint != w.o.Root && i.Mountpoint != w.o.State && !under(i.Mountpoint, w.nsRoot())
		return !mine, false
	})
	if err != nil {
		return []finding{{Kind: "mount", Item: "/proc/self/mountinfo", Detail: err.Error()}}
	}
	var out []finding
	for _, i := range infos {
		if underAny(i.Mountpoint, w.dirs) {
			continue
		}
		mp := i.Mountpoint
		out = append(out, finding{Kind: "mount", Item: mp, Detail: i.FSType + " mount under our dirs, no record owns it", Ours: true,
			fix: func() error { return ignoreGone(unix.Unmount(mp, unix.MNT_DETACH)) }})
	}
	return out
}

// checkPins: namespace pin dirs of sandboxes no record owns.
func checkPins(w *ownership) []finding {
	var out []finding
	for id, dir := range w.strayPins {
		out = append(out, finding{Kind: "pin", Item: dir, Detail: "namespace pins of sandbox " + shortID(id) + ", no record", Ours: true,
			fix: func() error { return unpin(dir) }})
	}
	return out
}

func unpin(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, err)
		}
		errs = append(errs, ignoreGone(os.Remove(p)))
	}
	errs = append(errs, ignoreGone(os.Remove(dir)))
	return errors.Join(errs...)
}

// checkVeths: veths on our CNI bridges whose peer netns is no sandbox's.
// A peer in one of our stray pins is provably ours; any other peer may be
// another runtime's pod on a shared bridge and is only shown.
func checkVeths(w *ownership) []finding {
	bridges := slices.Clone(w.o.Bridges)
	for name := range w.hostIfs {
		if l, err := netlink.LinkByName(name); err == nil && l.Type() == "bridge" {
			bridges = append(bridges, name)
		}
	}
	if len(bridges) == 0 {
		return nil
	}
	owned, stray := map[int]bool{}, map[int]string{}
	for _, s := range w.sandboxes {
		if id, ok := nsid(s.NetNS); ok {
			owned[id] = true
		}
	}
	for id, dir := range w.strayPins {
		if n, ok := nsid(filepath.Join(dir, "net")); ok {
			stray[n] = id
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		return []finding{{Kind: "veth", Item: "netlink", Detail: err.Error()}}
	}
	masters := map[int]string{}
	for _, l := range links {
		if slices.Contains(bridges, l.Attrs().Name) {
			masters[l.Attrs().Index] = l.Attrs().Name
		}
	}
	var out []finding
	for _, l := range links {
		a := l.Attrs()
		br, onOurs := masters[a.MasterIndex]
		if l.Type() != "veth" || !onOurs || owned[a.NetNsID] || w.hostIfs[a.Name] {
			continue
		}
		f := finding{Kind: "veth", Item: a.Name + " (on " + br + ")"}
		if id, ok := stray[a.NetNsID]; ok {
			f.Detail, f.Ours = "peer is in the stray netns of sandbox "+shortID(id), true
			link := l
			f.fix = func() error { return ignoreGone(netlink.LinkDel(link)) }
		} else {
			f.Detail = "peer netns is no sandbox of ours (another runtime's pod on a shared bridge?)"
		}
		out = append(out, f)
	}
	return out
}

// nsid is the id the host's netns gives the pinned netns at path.
func nsid(path string) (int, bool) {
	if path == "" {
		return 0, false
	}
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	id, err := netlink.GetNetNsIdByFd(int(f.Fd()))
	return id, err == nil && id >= 0
}

// checkIPAM: host-local reservations on our networks held by a container id
// (the file's first line) that no sandbox owns. Provably ours when libcni's
// cache in our root, or a stray pin, names the id.
func checkIPAM(w *ownership) []finding {
	var out []finding
	for _, net := range w.o.Networks {
		dir := filepath.Join("/var/lib/cni/networks", net)
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() == "lock" || strings.HasPrefix(e.Name(), "last_reserved_ip") {
				continue
			}
			p := filepath.Join(dir, e.Name())
			raw, err := os.ReadFile(p)
			if err != nil {
				continue
			}
			id := strings.TrimSpace(firstLine(string(raw)))
			if _, ok := w.sandboxes[id]; ok {
				continue
			}
			f := finding{Kind: "ipam", Item: p, Detail: "held by " + shortID(id) + ", no sandbox of ours"}
			cached, _ := filepath.Glob(filepath.Join(w.o.CNICacheDir, "results", net+"-"+id+"-*"))
			if _, pinned := w.strayPins[id]; pinned || len(cached) > 0 {
				f.Ours, f.Detail = true, "held by our sandbox "+shortID(id)+", which no record owns"
				f.fix = func() error {
					for _, c := range cached {
						_ = os.Remove(c)
					}
					return ignoreGone(os.Remove(p))
				}
			}
			out = append(out, f)
		}
	}
	return out
}

// checkRuntimeState: runc/crun state dirs under our --root of containers (or
// pod infra processes, named by sandbox id) no record owns.
func checkRuntimeState(w *ownership) []finding {
	var out []finding
	for _, h := range w.o.Handlers {
		entries, _ := os.ReadDir(h.Root)
		for _, e := range entries {
			id := e.Name()
			_, isCtr := w.containers[id]
			_, isInfra := w.sandboxes[id]
			if !e.IsDir() || isCtr || isInfra {
				continue
			}
			dir := filepath.Join(h.Root, id)
			out = append(out, finding{Kind: "runtime", Item: dir, Detail: h.Name + " state of " + shortID(id) + ", no record", Ours: true,
				fix: func() error {
					if h.Path != "" {
						if err := exec.Command(h.Path, "--root", h.Root, "delete", "--force", id).Run(); err == nil {
							return nil
						}
					}
					return os.RemoveAll(dir)
				}})
		}
	}
	return out
}

// checkShims: shim processes started with our state dir for a sandbox no
// record owns, and shim state dirs no sandbox owns.
func checkShims(w *ownership) []finding {
	var out []finding
	live := map[string]bool{}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil {
			continue
		}
		id, stateDir, ok := shimArgs(strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00"))
		if !ok || !under(stateDir, w.o.State) {
			continue
		}
		live[stateDir] = true
		if _, owned := w.sandboxes[id]; owned {
			continue
		}
		out = append(out, finding{Kind: "shim", Item: fmt.Sprintf("pid %d", pid), Detail: "shim of sandbox " + shortID(id) + ", no record", Ours: true,
			fix: func() error { return ignoreGone(syscall.Kill(pid, syscall.SIGKILL)) }})
	}
	owned := map[string]bool{}
	for _, s := range w.sandboxes {
		owned[s.ShimDir] = true
	}
	entries, _ := os.ReadDir(filepath.Join(w.o.State, "shims"))
	for _, e := range entries {
		dir := filepath.Join(w.o.State, "shims", e.Name())
		if owned[dir] || !e.IsDir() {
			continue
		}
		f := finding{Kind: "shimdir", Item: dir, Detail: "shim state of no sandbox", Ours: true}
		if live[dir] {
			f.Detail += " (its shim still runs: fixed with it, on a second run)"
		} else {
			f.fix = func() error { return os.RemoveAll(dir) }
		}
		out = append(out, f)
	}
	return out
}

// shimArgs parses "nodeagent shim serve --id X --state-dir D ...".
func shimArgs(argv []string) (id, stateDir string, ok bool) {
	i := slices.Index(argv, "shim")
	if i < 0 || i+1 >= len(argv) || argv[i+1] != "serve" {
		return "", "", false
	}
	for j := i + 2; j+1 < len(argv); j++ {
		switch argv[j] {
		case "--id":
			id = argv[j+1]
		case "--state-dir":
			stateDir = argv[j+1]
		}
	}
	return id, stateDir, id != "" && stateDir != ""
}

var (
	hexID     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	scopeName = regexp.MustCompile(`^nodeagent-([0-9a-f]{64})\.scope$`)
)

// checkCgroups: container cgroups below the cgroup parents of our pods
// (cgroupfs: <parent>/<id>; systemd: <slice>/nodeagent-<id>.scope) whose id
// no record owns. Other parents are never looked at: they may be shared.
func checkCgroups(w *ownership) []finding {
	parents := map[string]bool{}
	for _, s := range w.sandboxes {
		if s.CgroupParent != "" {
			parents[filepath.Base(s.CgroupParent)] = true
		}
	}
	if len(parents) == 0 {
		return nil
	}
	root := "/sys/fs/cgroup"
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		root = filepath.Join(root, "pids") // v1: one hierarchy names them all
	}
	var out []finding
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == root {
			return nil
		}
		if strings.Count(strings.TrimPrefix(p, root), "/") > 8 {
			return filepath.SkipDir
		}
		id := d.Name()
		if m := scopeName.FindStringSubmatch(id); m != nil {
			id = m[1]
		} else if !hexID.MatchString(id) {
			return nil
		}
		if _, ok := w.containers[id]; ok || !parents[filepath.Base(filepath.Dir(p))] {
			return filepath.SkipDir
		}
		rel := strings.TrimPrefix(p, root)
		out = append(out, finding{Kind: "cgroup", Item: rel, Detail: "cgroup of container " + shortID(id) + ", no record", Ours: true,
			fix: func() error { return removeCgroup(rel) }})
		return filepath.SkipDir
	})
	return out
}

// removeCgroup removes rel in every hierarchy (v1) or the unified one.
func removeCgroup(rel string) error {
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", rel))
	dirs = append(dirs, filepath.Join("/sys/fs/cgroup", rel))
	var errs []error
	for _, d := range dirs {
		errs = append(errs, ignoreGone(os.Remove(d)))
	}
	return errors.Join(errs...)
}

// ignoreGone treats "already gone" as done. A veth goes with its peer's
// netns: once --fix unpinned a stray netns, deleting its veth finds ENODEV.
func ignoreGone(err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV) {
		return nil
	}
	var le netlink.LinkNotFoundError
	if errors.As(err, &le) {
		return nil
	}
	return err
}
