package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// hangingPortmap wraps the real portmap plugin in a script that hangs on a
// CNI command while the file <plugin>.hang-<COMMAND> exists. It hangs in a
// child process, as a plugin waiting on iptables' lock would, and records
// the child's pid so the test can check that the timeout killed it too.
func hangingPortmap(t *testing.T) (binDir string, hang func(cmd string, on bool), childGone func() bool) {
	t.Helper()
	framework.RequirePlugins(t, "bridge", "host-local", "portmap", "loopback")
	binDir = t.TempDir()
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if err := os.Symlink(filepath.Join(framework.CNIBinDir, p), filepath.Join(binDir, p)); err != nil {
			t.Fatal(err)
		}
	}
	plugin := filepath.Join(binDir, "portmap")
	framework.WriteFile(t, plugin, "#!/bin/sh\nif [ -e \"$0.hang-$CNI_COMMAND\" ]; then sleep 3600 & echo $! > \"$0.child\"; wait; fi\nexec "+
		filepath.Join(framework.CNIBinDir, "portmap")+"\n")
	if err := os.Chmod(plugin, 0o755); err != nil {
		t.Fatal(err)
	}
	hang = func(cmd string, on bool) {
		if on {
			framework.WriteFile(t, plugin+".hang-"+cmd, "")
		} else {
			os.Remove(plugin + ".hang-" + cmd)
		}
	}
	childGone = func() bool {
		raw, err := os.ReadFile(plugin + ".child")
		if err != nil {
			t.Fatalf("the plugin never hung: %v", err)
		}
		pid, _ := strconv.Atoi(strings.TrimSpace(string(raw)))
		if syscall.Kill(pid, 0) == nil {
			return false
		}
		os.Remove(plugin + ".child")
		return true
	}
	return binDir, hang, childGone
}

// TestCNIPluginHangs: a plugin hanging on ADD is killed at cni.timeout and
// RunPodSandbox fails cleanly (rolled back, the error naming the limit); a
// plugin hanging on DEL makes StopPodSandbox fail the same way, leaving the
// pod NOTREADY, and a retried Stop finishes the job.
func TestCNIPluginHangs(t *testing.T) {
	binDir, hang, childGone := hangingPortmap(t)
	d := framework.StartDaemon(t, framework.Options{
		Args:   []string{"--cni-bin-dir", binDir},
		Config: "[cni]\ntimeout = \"2s\"\n",
	})
	framework.AddBridge(t, d)
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	ctx := framework.Ctx(t)
	cfg := d.PodConfig(t, "hang")

	hang("ADD", true)
	start := time.Now()
	_, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: cfg})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "cni.timeout") {
		t.Errorf("RunPodSandbox with a hanging ADD: %v, want DeadlineExceeded naming cni.timeout", err)
	}
	t.Logf("hanging ADD: %v", err)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("RunPodSandbox took %v with a 2s CNI timeout", took)
	}
	waitFor(t, childGone)
	if pods := listPods(t, d); len(pods) != 0 {
		t.Errorf("a timed-out ADD left sandboxes: %v", pods)
	}
	if left := dirNames(t, filepath.Join(d.State, "ns")); len(left) != 0 {
		t.Errorf("a timed-out ADD left pins: %v", left)
	}
	hang("ADD", false)

	id := runPod(t, d, cfg) // the name was released
	hang("DEL", true)
	_, err = d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id})
	if status.Code(err) != codes.DeadlineExceeded || !strings.Contains(err.Error(), "cni.timeout") {
		t.Errorf("StopPodSandbox with a hanging DEL: %v, want DeadlineExceeded naming cni.timeout", err)
	}
	t.Logf("hanging DEL: %v", err)
	waitFor(t, childGone)
	if st := podStatus(t, d, id); st.Status.State != runtimeapi.PodSandboxState_SANDBOX_NOTREADY {
		t.Errorf("after a failed stop: %v, want NOTREADY", st.Status.State)
	}
	hang("DEL", false)
	stopRemovePod(t, d, id) // kubelet's retry; the leak check then proves DEL ran
}
