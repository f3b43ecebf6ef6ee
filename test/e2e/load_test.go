package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// daemonLoad is what must come back to baseline after churn: the daemon's
// goroutines (from its metrics) and open fds.
type daemonLoad struct{ goroutines, fds int }

func measure(t *testing.T, d *framework.Daemon, metricsAddr string) daemonLoad {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var l daemonLoad
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			l.goroutines, _ = strconv.Atoi(v)
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", d.PID()))
	if err != nil {
		t.Fatal(err)
	}
	l.fds = len(fds)
	return l
}

// settled waits until the daemon's goroutines and fds are back within slack
// of the baseline: connections and timers wind down after the last reply.
func settled(t *testing.T, d *framework.Daemon, addr string, base daemonLoad) {
	t.Helper()
	const slack = 5
	var now daemonLoad
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		now = measure(t, d, addr)
		if now.goroutines <= base.goroutines+slack && now.fds <= base.fds+slack {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("daemon did not come back to baseline: %+v, baseline %+v", now, base)
}

// TestLoad, kept within a 2-core CI budget: 30 pods started at once on a
// bridge network with a container PID namespace (as kubelet sends), all
// READY, removed at once; 20 concurrent ExecSync on one container; the
// daemon's goroutines and fds back to their baseline afterwards.
func TestLoad(t *testing.T) {
	const pods, execs = 30, 20
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := framework.StartDaemon(t, framework.Options{
		Args:   framework.MirrorArgs(t),
		Config: "[metrics]\naddress = \"" + addr + "\"\n",
	})
	framework.AddBridge(t, d)
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	if _, err := d.Images.PullImage(framework.Ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		t.Fatalf("PullImage: %v", err)
	}
	base := measure(t, d, addr)

	ids := make([]string, pods)
	cfgs := make([]*runtimeapi.PodSandboxConfig, pods)
	errs := make([]error, pods)
	begin := time.Now()
	var wg sync.WaitGroup
	for i := range pods {
		wg.Go(func() {
			cfg := d.PodConfig(t, fmt.Sprintf("load-%d", i))
			cfgs[i] = cfg
			cfg.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: &runtimeapi.NamespaceOption{Pid: runtimeapi.NamespaceMode_CONTAINER},
			}
			resp, err := d.Runtime.RunPodSandbox(framework.Ctx(t), &runtimeapi.RunPodSandboxRequest{Config: cfg})
			ids[i], errs[i] = resp.GetPodSandboxId(), err
		})
	}
	wg.Wait()
	elapsed := time.Since(begin)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("RunPodSandbox %d: %v", i, err)
		}
	}
	for _, id := range ids {
		if st := podStatus(t, d, id); st.Status.State != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("pod %s: %v", id, st.Status.State)
		}
	}
	t.Logf("%d pods started concurrently in %v: %.1f pods/s", pods, elapsed.Round(time.Millisecond), float64(pods)/elapsed.Seconds())

	// 20 concurrent ExecSync on one container of the first pod.
	e := &podEnv{d: d, podID: ids[0], pod: cfgs[0]}
	cid := e.create(t, "exec", "sleep", "3600")
	e.start(t, cid)
	begin = time.Now()
	for i := range execs {
		wg.Go(func() {
			resp, err := d.Runtime.ExecSync(framework.Ctx(t), &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"echo", strconv.Itoa(i)}, Timeout: 30})
			if err != nil || string(resp.Stdout) != strconv.Itoa(i)+"\n" || resp.ExitCode != 0 {
				t.Errorf("ExecSync %d: %q %d %v", i, resp.GetStdout(), resp.GetExitCode(), err)
			}
		})
	}
	wg.Wait()
	t.Logf("%d concurrent ExecSync in %v", execs, time.Since(begin).Round(time.Millisecond))

	begin = time.Now()
	for i, id := range ids {
		wg.Go(func() {
			ctx := framework.Ctx(t)
			if _, err := d.Runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
				t.Errorf("StopPodSandbox %d: %v", i, err)
			}
			if _, err := d.Runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
				t.Errorf("RemovePodSandbox %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	elapsed = time.Since(begin)
	t.Logf("%d pods removed concurrently in %v: %.1f pods/s", pods, elapsed.Round(time.Millisecond), float64(pods)/elapsed.Seconds())
	settled(t, d, addr, base)
}
