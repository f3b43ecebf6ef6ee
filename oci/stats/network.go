package stats

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/containerd/errdefs"

	"github.com/nodeagent/nodeagent/internal/nsutil"
)

// Interface is the traffic of one network interface since it was created.
type Interface struct {
	Name                                    string
	RxBytes, RxPackets, RxErrors, RxDropped uint64
	TxBytes, TxPackets, TxErrors, TxDropped uint64
}

// NetworkStats returns the counters of every interface (lo included, sorted
// by name) in the network namespace pinned at netnsPath. Choosing the
// default interface (CNI's eth0) is the caller's business. A pin that is gone
// or no longer a namespace (after a reboot) is errdefs.ErrNotFound.
//
// The counters are read from /proc/thread-self/net/dev on a thread inside
// the namespace: /sys/class/net would show the namespace sysfs was mounted
// in, and /proc/self/net the main thread's.
func NetworkStats(netnsPath string) ([]Interface, error) {
	if netnsPath == "" {
		return nil, fmt.Errorf("empty netns path: %w", errdefs.ErrInvalidArgument)
	}
	if !nsutil.IsPinned(netnsPath) {
		return nil, fmt.Errorf("netns %s: %w", netnsPath, errdefs.ErrNotFound)
	}
	var data []byte
	err := nsutil.Do(netnsPath, func() error {
		var err error
		data, err = os.ReadFile("/proc/thread-self/net/dev")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read network stats of %s: %w", netnsPath, err)
	}
	return parseNetDev(data)
}

// parseNetDev parses /proc/net/dev: two header lines, then
//
//	name: rx_bytes packets errs drop fifo frame compressed multicast tx_bytes packets errs drop fifo colls carrier compressed
func parseNetDev(data []byte) ([]Interface, error) {
	var out []Interface
	sc := bufio.NewScanner(bytes.NewReader(data))
	for line := 0; sc.Scan(); line++ {
		if line < 2 {
			continue
		}
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			return nil, fmt.Errorf("parse /proc/net/dev line %d %q: no colon", line+1, sc.Text())
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			return nil, fmt.Errorf("parse /proc/net/dev line %d %q: %d fields, want 16", line+1, sc.Text(), len(f))
		}
		var v [16]uint64
		for i := range v {
			n, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("parse /proc/net/dev line %d: %w", line+1, err)
			}
			v[i] = n
		}
		out = append(out, Interface{
			Name:    strings.TrimSpace(name),
			RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
			TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Interface) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
