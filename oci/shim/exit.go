package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// exitSuffix names a container's exit record in the state dir.
const exitSuffix = ".exit.json"

func exitRecordPath(stateDir, id string) string {
	return filepath.Join(stateDir, id+exitSuffix)
}

// writeExitRecord persists st before anyone is told of the exit, temp+rename
// so a reader never sees half a record. No fsync: the record must survive the
// shim and the daemon dying, not the machine (a reboot ends the containers
// too, and /run is normally tmpfs).
func writeExitRecord(stateDir string, st State) error {
	doc, err := json.Marshal(st)
	if err != nil {
		return err
	}
	path := exitRecordPath(stateDir, st.ID)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, doc, 0o600); err != nil {
		return fmt.Errorf("exit record: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("exit record: %w", err)
	}
	return nil
}

// ExitRecords reads the exit records a shim left in stateDir: what a daemon
// recovering without a live shim can still learn about its containers.
func ExitRecords(stateDir string) ([]State, error) {
	paths, err := filepath.Glob(filepath.Join(stateDir, "*"+exitSuffix))
	if err != nil {
		return nil, err
	}
	var out []State
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		var st State
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("exit record %s: %w", p, err)
		}
		out = append(out, st)
	}
	return out, nil
}

// oomCounter reads the OOM-kill count of a container's memory cgroup: v1
// memory.oom_control, v2 memory.events, both "oom_kill <n>". The count after
// the init exits, compared with the count at create, says whether the
// kernel's OOM killer struck in the container.
type oomCounter struct {
	file   string
	before uint64
}

// newOOMCounter finds pid's memory cgroup from /proc/<pid>/cgroup while the
// init is alive (the runtime's state does not name the cgroup) and reads the
// current count. Without a readable counter it returns nil: no OOM can be told.
func newOOMCounter(pid int) *oomCounter {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil
	}
	var file string
	for _, line := range strings.Split(string(raw), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case hasController(parts[1], "memory"):
			file = filepath.Join("/sys/fs/cgroup/memory", parts[2], "memory.oom_control")
		case parts[0] == "0" && parts[1] == "" && file == "":
			file = filepath.Join("/sys/fs/cgroup", parts[2], "memory.events")
		}
	}
	n, ok := readOOMKills(file)
	if !ok {
		return nil
	}
	return &oomCounter{file: file, before: n}
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// killed reports whether the count grew since create.
func (o *oomCounter) killed() bool {
	if o == nil {
		return false
	}
	n, ok := readOOMKills(o.file)
	return ok && n > o.before
}

func readOOMKills(file string) (uint64, bool) {
	if file == "" {
		return 0, false
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "oom_kill "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// exitReason is kubelet's reason for an exit.
func exitReason(code int32, oomKilled bool) string {
	switch {
	case oomKilled:
		return ReasonOOMKilled
	case code == 0:
		return ReasonCompleted
	default:
		return ReasonError
	}
}
