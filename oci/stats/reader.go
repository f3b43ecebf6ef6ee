package stats

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"
	"github.com/opencontainers/cgroups/fscommon"
)

// Mode is the cgroup layout of a host.
type Mode int

const (
	// Legacy: every v1 controller on its own hierarchy at <root>/<controller>.
	Legacy Mode = iota
	// Hybrid: v1 controllers as in Legacy, plus a v2 hierarchy at
	// <root>/unified that holds no controller we read; its pressure (PSI)
	// files are read when the cgroup exists there (runc creates it).
	Hybrid
	// Unified: a single v2 hierarchy at <root>.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

const defaultRoot = "/sys/fs/cgroup"

// v1Controllers are the v1 hierarchies a Sample is read from.
var v1Controllers = []string{"cpu", "cpuacct", "memory", "pids", "blkio"}

// statControllers limits the library to what a Sample uses (no cpuset,
// hugetlb, rdma, misc).
var statControllers = &cgroups.StatsOptions{Controllers: cgroups.CPU | cgroups.Memory | cgroups.Pids | cgroups.IO}

// Reader reads a cgroup's counters. It knows the host's layout, detected
// once; it is safe for concurrent use and keeps no state between reads.
type Reader struct {
	mode Mode
	// v1 maps each mounted v1 controller to the root of its hierarchy.
	v1 map[string]string
	// v2 is the root of the v2 hierarchy, "" when there is none.
	v2 string
}

// NewReader detects the host's cgroup layout under /sys/fs/cgroup. v1
// mountpoints come from mountinfo, so co-mounted controllers ("cpu,cpuacct")
// and unusual mount places are found.
func NewReader() (*Reader, error) {
	if cgroups.IsCgroup2UnifiedMode() {
		return NewReaderAt(defaultRoot, Unified), nil
	}
	mode := Legacy
	if cgroups.IsCgroup2HybridMode() {
		mode = Hybrid
	}
	r := NewReaderAt(defaultRoot, mode)
	for _, c := range v1Controllers {
		mnt, err := cgroups.FindCgroupMountpoint("", c)
		if cgroups.IsNotFound(err) {
			delete(r.v1, c)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("find cgroup %s mountpoint: %w", c, err)
		}
		r.v1[c] = mnt
	}
	if len(r.v1) == 0 {
		return nil, fmt.Errorf("no cgroup v1 controller among %v is mounted: %w", v1Controllers, errdefs.ErrNotImplemented)
	}
	return r, nil
}

// NewReaderAt reads a tree laid out as mode at root: <root>/<controller>
// for v1 (plus <root>/unified in Hybrid), root itself for Unified. Tests use
// it over recorded fixture trees (with cgroups.TestMode set, since fixture
// files are not on cgroupfs).
func NewReaderAt(root string, mode Mode) *Reader {
	r := &Reader{mode: mode}
	switch mode {
	case Unified:
		r.v2 = root
	default:
		r.v1 = make(map[string]string, len(v1Controllers))
		for _, c := range v1Controllers {
			r.v1[c] = filepath.Join(root, c)
		}
		if mode == Hybrid {
			r.v2 = filepath.Join(root, "unified")
		}
	}
	return r
}

// Mode reports the layout the reader reads.
func (r *Reader) Mode() Mode { return r.mode }

// ExpandPath turns an OCI cgroupsPath into a path relative to the root of
// every hierarchy, the way runc does:
//   - systemd "slice:prefix:name" becomes /<expanded slice>/<prefix>-<name>.scope
//     (or /<expanded slice>/<name> when name is itself a .slice; an empty
//     slice means system.slice);
//   - a bare systemd slice "a-b.slice" (a pod's cgroup parent under the
//     systemd driver) becomes /a.slice/a-b.slice;
//   - anything else is a cgroupfs path, cleaned and rooted at "/".
func ExpandPath(cgroupsPath string) (string, error) {
	if cgroupsPath == "" {
		return "", fmt.Errorf("empty cgroups path: %w", errdefs.ErrInvalidArgument)
	}
	if strings.Contains(cgroupsPath, ":") {
		parts := strings.Split(cgroupsPath, ":")
		if len(parts) != 3 {
			return "", fmt.Errorf("systemd cgroups path %q is not slice:prefix:name: %w", cgroupsPath, errdefs.ErrInvalidArgument)
		}
		slice, prefix, name := parts[0], parts[1], parts[2]
		if slice == "" {
			slice = "system.slice"
		}
		dir, err := expandSlice(slice)
		if err != nil {
			return "", err
		}
		if name == "" || strings.Contains(name, "/") {
			return "", fmt.Errorf("systemd unit name %q in %q: %w", name, cgroupsPath, errdefs.ErrInvalidArgument)
		}
		unit := name
		if !strings.HasSuffix(name, ".slice") {
			unit = prefix + "-" + name + ".scope"
		}
		return filepath.Join(dir, unit), nil
	}
	if !strings.Contains(cgroupsPath, "/") && strings.HasSuffix(cgroupsPath, ".slice") {
		return expandSlice(cgroupsPath)
	}
	return filepath.Join("/", cgroupsPath), nil
}

// expandSlice is runc's systemd.ExpandSlice: "a-b-c.slice" lives at
// /a.slice/a-b.slice/a-b-c.slice. Copied rather than imported because the
// systemd package would link D-Bus into the daemon for a string function.
func expandSlice(slice string) (string, error) {
	const suffix = ".slice"
	name, ok := strings.CutSuffix(slice, suffix)
	if !ok || name == "" || strings.Contains(slice, "/") {
		return "", fmt.Errorf("invalid systemd slice %q: %w", slice, errdefs.ErrInvalidArgument)
	}
	if name == "-" {
		return "/", nil
	}
	var path, prefix string
	for _, component := range strings.Split(name, "-") {
		if component == "" {
			return "", fmt.Errorf("invalid systemd slice %q: %w", slice, errdefs.ErrInvalidArgument)
		}
		path += "/" + prefix + component + suffix
		prefix += component + "-"
	}
	return path, nil
}

// Read samples the cgroup at cgroupsPath (as the OCI spec had it). A cgroup
// that does not exist, or vanishes while being read, is errdefs.ErrNotFound.
func (r *Reader) Read(cgroupsPath string) (Sample, error) {
	rel, err := ExpandPath(cgroupsPath)
	if err != nil {
		return Sample{}, err
	}
	if r.mode == Unified {
		return r.readV2(filepath.Join(r.v2, rel), cgroupsPath)
	}
	return r.readV1(rel, cgroupsPath)
}

func (r *Reader) readV1(rel, cgroupsPath string) (Sample, error) {
	paths := make(map[string]string, len(r.v1))
	for c, root := range r.v1 {
		// A controller the cgroup was not created in is left out rather
		// than failing the whole read.
		if p := filepath.Join(root, rel); isDir(p) {
			paths[c] = p
		}
	}
	if len(paths) == 0 {
		return Sample{}, fmt.Errorf("cgroup %s: %w", cgroupsPath, errdefs.ErrNotFound)
	}
	// Resources must be non-nil for the v1 manager; it is never applied.
	m, err := fs.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, paths)
	if err != nil {
		return Sample{}, fmt.Errorf("cgroup %s: %w", cgroupsPath, err)
	}
	now := time.Now()
	st, err := m.Stats(statControllers)
	if err = checkRead(cgroupsPath, err, paths); err != nil {
		return Sample{}, err
	}
	s := fromStats(st, v1Keys, now)
	if p, ok := paths["memory"]; ok {
		// Best effort: memory.oom_control has oom_kill since Linux 4.13.
		s.OOMKills, _ = fs.OOMKillCount(p)
	}
	if r.v2 != "" {
		s.PSI = readPSI(filepath.Join(r.v2, rel))
	}
	return s, nil
}

func (r *Reader) readV2(dir, cgroupsPath string) (Sample, error) {
	if !isDir(dir) {
		return Sample{}, fmt.Errorf("cgroup %s: %w", cgroupsPath, errdefs.ErrNotFound)
	}
	m, err := fs2.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, dir)
	if err != nil {
		return Sample{}, fmt.Errorf("cgroup %s: %w", cgroupsPath, err)
	}
	now := time.Now()
	st, err := m.Stats(statControllers)
	if err = checkRead(cgroupsPath, err, map[string]string{"": dir}); err != nil {
		return Sample{}, err
	}
	s := fromStats(st, v2Keys, now)
	s.PSI = psiFrom(st)
	// Best effort: memory.events is absent when the memory controller is
	// not enabled for the cgroup.
	s.OOMKills, _ = fscommon.GetValueByKey(dir, "memory.events", "oom_kill")
	return s, nil
}

// checkRead classifies a read. The usual failure is the container exiting
// and its cgroup being removed mid-read: that is NotFound, whether the
// library failed (its v2 errors are joined into a string, so existence is
// checked rather than unwrapped) or succeeded with zeros (it skips a missing
// file as an absent controller), so existence is checked after a success
// too. A file missing from a cgroup that still exists is a real error.
func checkRead(cgroupsPath string, err error, paths map[string]string) error {
	for _, p := range paths {
		if !isDir(p) {
			return fmt.Errorf("cgroup %s: removed while read: %w", cgroupsPath, errdefs.ErrNotFound)
		}
	}
	if err != nil {
		return fmt.Errorf("read cgroup %s: %w", cgroupsPath, err)
	}
	return nil
}

// readPSI reads the pressure files of a v2 cgroup directory (Hybrid mode:
// the unified hierarchy holds no controllers, but every cgroup there has
// pressure files when the kernel runs with psi=1). nil when the directory or
// the files are absent.
func readPSI(dir string) *PSI {
	if !isDir(dir) {
		return nil
	}
	m, err := fs2.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, dir)
	if err != nil {
		return nil
	}
	// Best effort: pressure is an extra; a failure leaves it out rather
	// than failing the sample.
	st, _ := m.Stats(&cgroups.StatsOptions{Controllers: cgroups.CPU | cgroups.Memory | cgroups.IO})
	if st == nil {
		return nil
	}
	return psiFrom(st)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}
