package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// crictlLite builds the CLI once per test process.
func crictlLite(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crictl-lite-e2e-")
		if err != nil {
			cliErr = err
			return
		}
		cliPath = filepath.Join(dir, "crictl-lite")
		out, err := exec.Command("go", "build", "-o", cliPath, "github.com/nodeagent/nodeagent/cmd/crictl-lite").CombinedOutput()
		if err != nil {
			cliErr = errors.New(string(out))
		}
	})
	if cliErr != nil {
		t.Fatalf("build crictl-lite: %v", cliErr)
	}
	return cliPath
}

// cli runs crictl-lite against e's daemon and returns stdout, stderr and
// the exit code.
func (e *podEnv) cli(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return e.cliStdin(t, "", args...)
}

func (e *podEnv) cliStdin(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(crictlLite(t), append([]string{"-r", "unix://" + e.d.Socket}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("crictl-lite %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func (e *podEnv) cliOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := e.cli(t, args...)
	if code != 0 {
		t.Fatalf("crictl-lite %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

func mustContain(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s: want %q in:\n%s", what, w, got)
		}
	}
}

func TestCrictlLite(t *testing.T) {
	e := newPodEnv(t)
	failed := e.create(t, "failing", "sh", "-c", "echo hello from failing; echo broken >&2; exit 3")
	e.start(t, failed)
	e.waitExited(t, failed)
	sleeper := e.create(t, "sleeper", "sleep", "3600")
	e.start(t, sleeper)

	t.Logf("ps -a:\n%s", e.cliOK(t, "ps", "-a"))
	mustContain(t, "pods", e.cliOK(t, "pods"), shortID(e.podID), "ctr", "e2e", "READY")
	mustContain(t, "ps -a --pod", e.cliOK(t, "ps", "-a", "--pod", "e2e/ctr"), "failing", "sleeper", "EXITED", "RUNNING")
	if out := e.cliOK(t, "ps"); strings.Contains(out, "failing") {
		t.Errorf("ps without -a lists an exited container:\n%s", out)
	}
	mustContain(t, "images", e.cliOK(t, "images"), "busybox")
	mustContain(t, "logs", e.cliOK(t, "logs", "ctr/failing"), "hello from failing")
	mustContain(t, "logs --tail 0", "x"+e.cliOK(t, "logs", "--tail", "0", failed[:12]), "x")
	mustContain(t, "inspectp", e.cliOK(t, "inspectp", e.podID[:8]), `"id": "`+e.podID, `"cniResult"`)
	mustContain(t, "exec", e.cliOK(t, "exec", "sleeper", "echo", "in", "sleeper"), "in sleeper")
	if _, _, code := e.cli(t, "exec", "sleeper", "sh", "-c", "exit 4"); code != 4 {
		t.Errorf("exec exit code = %d, want 4", code)
	}

	// -i streams through the runtime's exec URL (SPDY), exit code included.
	if out, errOut, code := e.cliStdin(t, "piped\n", "exec", "-i", "sleeper", "sh", "-c", "cat; exit 5"); out != "piped\n" || code != 5 {
		t.Errorf("exec -i: stdout %q, stderr %q, exit %d; want \"piped\\n\", 5", out, errOut, code)
	}

	why := e.cliOK(t, "why", "e2e/ctr")
	t.Logf("why e2e/ctr:\n%s", why)
	mustContain(t, "why", why, "container failing exited with code 3", "RunPodSandbox", "StartContainer", "hello from failing", "broken")

	_, errOut, code := e.cli(t, "logs", "nosuch")
	if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, `no container "nosuch"`) {
		t.Errorf("logs of an unknown container: exit %d, stderr %q; want one line, exit 1", code, errOut)
	}

	mustContain(t, "doctor on a clean node", e.cliOK(t, "doctor"), "No leaks found.")
	// A stray pin dir of a sandbox no record owns is a leak that --fix removes.
	stray := filepath.Join(e.d.State, "ns", strings.Repeat("ab", 32))
	if err := os.MkdirAll(stray, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stray, "net"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code := e.cli(t, "doctor")
	if code != 1 || !strings.Contains(out, stray) {
		t.Errorf("doctor with a stray pin: exit %d, want 1, listing %s:\n%s", code, stray, out)
	}
	e.cliOK(t, "doctor", "--fix")
	if _, err := os.Stat(stray); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("doctor --fix left %s: %v", stray, err)
	}
	mustContain(t, "doctor after --fix", e.cliOK(t, "doctor"), "No leaks found.")

	if _, err := e.d.Runtime.StopContainer(framework.Ctx(t), &runtimeapi.StopContainerRequest{ContainerId: sleeper, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
}

func shortID(id string) string { return id[:13] }
