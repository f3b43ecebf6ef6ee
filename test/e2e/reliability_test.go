package e2e

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// shimPID finds the `shim serve --id <sandbox id>` process of a pod.
func shimPID(t *testing.T, sandboxID string) int {
	t.Helper()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	want := []byte("\x00serve\x00--id\x00" + sandboxID + "\x00")
	for _, dir := range dirs {
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil || !bytes.Contains(cmdline, want) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(dir))
		return pid
	}
	t.Fatalf("no shim process serves pod %s", sandboxID)
	return 0
}

// killShim SIGKILLs a pod's shim and waits until it is gone.
func killShim(t *testing.T, sandboxID string) {
	t.Helper()
	pid := shimPID(t, sandboxID)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		_, err := os.Stat("/proc/" + strconv.Itoa(pid) + "/cmdline")
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err != nil || bytes.Contains(b, []byte(") Z "))
	})
}

// TestShimKilled: a pod's shim killed with SIGKILL. Its containers are
// killed rather than left running unreaped, reported EXITED with a reason,
// the pod stops and goes cleanly, and nothing leaks (the framework checks
// processes, mounts, cgroups and runtime state at the end).
func TestShimKilled(t *testing.T) {
	t.Run("daemon running", func(t *testing.T) {
		e := newPodEnv(t)
		id := e.create(t, "main", "sleep", "3600")
		e.start(t, id)
		killShim(t, e.podID)
		st := e.waitExited(t, id)
		if st.Reason == "" || st.Message == "" || st.ExitCode == 0 {
			t.Errorf("exit of a container whose shim died: reason %q message %q code %d", st.Reason, st.Message, st.ExitCode)
		}
		// The pod stays usable: kubelet restarts the container under a new shim.
		id2 := e.create(t, "main2", "sleep", "3600")
		e.start(t, id2)
		if st := e.status(t, id2); st.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container started after the shim died: %v", st.State)
		}
		stopRemovePod(t, e.d, e.podID)
	})
	t.Run("daemon down", func(t *testing.T) {
		e := newPodEnv(t)
		id := e.create(t, "main", "sleep", "3600")
		e.start(t, id)
		e.d.Kill(t)
		killShim(t, e.podID)
		e.d.Start(t)
		st := e.status(t, id)
		if st.State != runtimeapi.ContainerState_CONTAINER_EXITED || st.Reason == "" {
			t.Errorf("after restart: state %v reason %q, want EXITED with a reason", st.State, st.Reason)
		}
		stopRemovePod(t, e.d, e.podID)
		if resp, err := e.d.Runtime.ListContainers(framework.Ctx(t), &runtimeapi.ListContainersRequest{}); err != nil || len(resp.Containers) != 0 {
			t.Errorf("containers after RemovePodSandbox: %v %v", resp.GetContainers(), err)
		}
	})
}
