package framework

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nodeagent/nodeagent/internal/leakcheck"
)

// CNIBinDir is where hack/install-deps.sh installs the real CNI plugins.
const CNIBinDir = "/opt/cni/bin"

// Bridge is a bridge CNI network made for one test: unique bridge name,
// network name and subnet, so two runs never collide.
type Bridge struct {
	Name    string // CNI network name
	Bridge  string // host bridge interface
	Subnet  *net.IPNet
	Gateway net.IP
}

// RequirePlugins fails the test when the real CNI plugins are missing.
func RequirePlugins(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(CNIBinDir, n)); err != nil {
			t.Fatalf("CNI plugin %s missing in %s: run hack/install-deps.sh (make test does)", n, CNIBinDir)
		}
	}
}

// AddBridge writes a bridge+portmap+loopback conflist into the daemon's conf
// dir and removes the bridge and its IPAM state when the test ends.
func AddBridge(t testing.TB, d *Daemon) *Bridge {
	t.Helper()
	RequirePlugins(t, "bridge", "host-local", "portmap", "loopback")
	suffix := randHex(3)
	b := &Bridge{Name: "natest-" + suffix, Bridge: "nat" + suffix + "0"}
	b.Subnet, b.Gateway = freeSubnet(t)
	conf := fmt.Sprintf(`{"cniVersion":"1.0.0","name":%q,"plugins":[
{"type":"bridge","bridge":%q,"isGateway":true,"ipMasq":true,"hairpinMode":true,
 "ipam":{"type":"host-local","ranges":[[{"subnet":%q}]],"routes":[{"dst":"0.0.0.0/0"}]}},
{"type":"portmap","capabilities":{"portMappings":true}},
{"type":"loopback"}]}`, b.Name, b.Bridge, b.Subnet.String())
	WriteFile(t, filepath.Join(d.CNIDir, "10-"+b.Name+".conflist"), conf)
	d.ExtendScope(b.scope)
	d.AddCleanup(func() {
		_ = exec.Command("ip", "link", "del", b.Bridge).Run()
		os.RemoveAll(filepath.Join("/var/lib/cni/networks", b.Name))
	})
	return b
}

// scope extends a daemon's leak scope with this network's veths, IPAM
// reservations and iptables rules.
func (b *Bridge) scope(s leakcheck.Scope) leakcheck.Scope {
	s.Bridges = append(s.Bridges, b.Bridge)
	s.CNINetworks = append(s.CNINetworks, b.Name)
	s.IPTablesMarkers = append(s.IPTablesMarkers, b.Name, b.Subnet.String())
	return s
}

// freeSubnet picks a 10.x.y.0/24 that no host route covers.
func freeSubnet(t testing.TB) (*net.IPNet, net.IP) {
	t.Helper()
	out, _ := exec.Command("ip", "-4", "route", "show", "table", "all").Output()
	for i := 0; i < 100; i++ {
		b := make([]byte, 2)
		_, _ = rand.Read(b)
		cidr := fmt.Sprintf("10.%d.%d.0/24", 200+int(b[0])%50, b[1])
		if strings.Contains(string(out), strings.TrimSuffix(cidr, "0/24")) {
			continue
		}
		_, n, _ := net.ParseCIDR(cidr)
		gw := make(net.IP, 4)
		copy(gw, n.IP.To4())
		gw[3] = 1
		return n, gw
	}
	t.Fatal("no free 10.x.y.0/24 subnet")
	return nil, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// WriteFile writes a file or fails the test.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
