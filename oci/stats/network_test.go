package stats

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/containerd/errdefs"

	"github.com/nodeagent/nodeagent/internal/leakcheck"
	"github.com/nodeagent/nodeagent/internal/nsutil"
)

func TestParseNetDev(t *testing.T) {
	const header = "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	for _, tc := range []struct {
		name string
		in   string
		want []Interface
		bad  bool
	}{
		{name: "empty namespace", in: header},
		{
			name: "sorted, all counters",
			in: header +
				"  eth0: 1296      16    1    2    0     0          0         0     1186      15    3    4    0     0       0          0\n" +
				"    lo:   840      10    0    0    0     0          0         0      840      10    0    0    0     0       0          0\n",
			want: []Interface{
				{Name: "eth0", RxBytes: 1296, RxPackets: 16, RxErrors: 1, RxDropped: 2, TxBytes: 1186, TxPackets: 15, TxErrors: 3, TxDropped: 4},
				{Name: "lo", RxBytes: 840, RxPackets: 10, TxBytes: 840, TxPackets: 10},
			},
		},
		{
			// Old kernels print no space between a long name and the bytes.
			name: "no space after colon",
			in:   header + "veth1234abcd:18446744073709551615 1 0 0 0 0 0 0 2 1 0 0 0 0 0 0\n",
			want: []Interface{{Name: "veth1234abcd", RxBytes: 18446744073709551615, RxPackets: 1, TxBytes: 2, TxPackets: 1}},
		},
		{name: "short line", in: header + "eth0: 1 2 3\n", bad: true},
		{name: "no colon", in: header + "eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", bad: true},
		{name: "not a number", in: header + "eth0: x 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", bad: true},
	} {
		got, err := parseNetDev([]byte(tc.in))
		if tc.bad != (err != nil) {
			t.Errorf("%s: err = %v", tc.name, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestNetworkStatsNotFound(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "net")
	// What a pin becomes after a reboot on a /run that is not tmpfs.
	if err := os.WriteFile(plain, nil, 0o400); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(dir, "missing"), plain} {
		if _, err := NetworkStats(p); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("NetworkStats(%s) = %v, want NotFound", p, err)
		}
	}
	if _, err := NetworkStats(""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("NetworkStats(\"\") = %v, want InvalidArgument", err)
	}
}

// A pod netns made the way sandboxes make theirs, with a veth pair inside and
// traffic on lo sent from a socket opened in it.
func TestNetworkStatsPinned(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	dir := filepath.Join(t.TempDir(), "ns")
	leakcheck.Check(t, leakcheck.Scope{Dirs: []string{dir}})
	if err := nsutil.CreatePinned(nsutil.PinOptions{Dir: dir, Types: []nsutil.Type{nsutil.Net}}); err != nil {
		t.Fatal(err)
	}
	// The veth pair lives and dies with the namespace.
	t.Cleanup(func() {
		if err := nsutil.Unpin(dir); err != nil {
			t.Error(err)
		}
	})
	pin := filepath.Join(dir, string(nsutil.Net))
	for _, args := range [][]string{
		{"link", "add", "veth0", "type", "veth", "peer", "name", "veth1"},
		{"link", "set", "veth0", "up"},
		{"link", "set", "veth1", "up"},
	} {
		if out, err := exec.Command("nsenter", append([]string{"--net=" + pin, "ip"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}

	const packets, size = 10, 100
	err := nsutil.Do(pin, func() error {
		l, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return err
		}
		defer l.Close()
		c, err := net.DialUDP("udp4", nil, l.LocalAddr().(*net.UDPAddr))
		if err != nil {
			return err
		}
		defer c.Close()
		buf := make([]byte, size)
		for range packets {
			if _, err := c.Write(buf); err != nil {
				return err
			}
			if _, err := l.Read(buf); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	ifs, err := NetworkStats(pin)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, i := range ifs {
		names = append(names, i.Name)
	}
	if !reflect.DeepEqual(names, []string{"lo", "veth0", "veth1"}) {
		t.Fatalf("interfaces %v, want exactly the namespace's lo, veth0, veth1", names)
	}
	lo := ifs[0]
	if lo.TxPackets < packets || lo.RxPackets < packets || lo.TxBytes < packets*size || lo.RxBytes < packets*size {
		t.Errorf("lo counted %+v after %d packets of %d bytes", lo, packets, size)
	}
}
