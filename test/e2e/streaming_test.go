package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/console"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// Streams are tried as a user would: with upstream crictl, over SPDY and
// WebSocket.
const crictlPath = "/usr/local/bin/crictl"

const nginx = "registry.k8s.io/e2e-test-images/nginx:1.14-2"

// transports are crictl's: SPDY, and WebSocket, which speaks the v5
// remotecommand protocol and tunnels port-forward's SPDY.
var transports = []string{"spdy", "websocket"}

// crictl runs upstream crictl against d with stdin as its input.
func crictl(t testing.TB, d *framework.Daemon, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := crictlCmd(ctx, d, args...)
	var out, errOut bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("crictl %v: %v", args, err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

func crictlCmd(ctx context.Context, d *framework.Daemon, args ...string) *exec.Cmd {
	endpoint := "unix://" + d.Socket
	return exec.CommandContext(ctx, crictlPath, append([]string{"--runtime-endpoint", endpoint, "--image-endpoint", endpoint}, args...)...)
}

func requireCrictl(t *testing.T) {
	if _, err := os.Stat(crictlPath); err != nil {
		t.Fatalf("upstream crictl: %v (hack/install-cri-tools.sh installs it)", err)
	}
}

func TestStreamingExec(t *testing.T) {
	requireCrictl(t)
	e := newPodEnv(t)
	id := e.create(t, "exec", "sleep", "3600")
	e.start(t, id)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			out, errOut, code := crictl(t, e.d, nil, "exec", "-r", tr, id, "sh", "-c", "echo out; echo err >&2; exit 3")
			// crictl reports the exit code in its message and exits 1.
			if out != "out\n" || !strings.Contains(errOut, "err\n") || !strings.Contains(errOut, "exit code 3") || code != 1 {
				t.Errorf("exec = %q %q exit %d, want out, err, exit 3", out, errOut, code)
			}
			// stdin reaches the process, and closing it is its EOF.
			out, errOut, code = crictl(t, e.d, strings.NewReader("one\ntwo\n"), "exec", "-i", "-r", tr, id, "sh", "-c", "wc -l; echo done")
			if !strings.HasPrefix(strings.TrimSpace(out), "2") || !strings.HasSuffix(out, "done\n") || code != 0 {
				t.Errorf("exec -i = %q %q exit %d", out, errOut, code)
			}
			wantProtocol(t, e.d, tr, "v5.channel.k8s.io")
		})
	}
}

// TestStreamingExecTTY runs crictl on a terminal of its own, as a user
// would: the size of that terminal reaches the process (resize), stderr is
// merged, and typed input arrives.
func TestStreamingExecTTY(t *testing.T) {
	requireCrictl(t)
	e := newPodEnv(t)
	id := e.create(t, "tty", "sleep", "3600")
	e.start(t, id)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := crictlCmd(ctx, e.d, "exec", "-it", "-r", tr, id, "sh", "-c", "stty size; tty; echo oops >&2; read x; echo got $x; exit 4")
			term := startOnTerminal(t, cmd)
			waitFor(t, func() bool { return strings.Contains(term.out.String(), "oops") })
			io.WriteString(term.pty, "hello\r")
			got := term.wait()
			for _, want := range []string{"33 111", "/dev/pts/", "oops", "got hello", "exit code 4"} {
				if !strings.Contains(got, want) {
					t.Errorf("tty exec output %q lacks %q", got, want)
				}
			}
		})
	}
}

// terminal is a process started on a pty of the test's, 33x111.
type terminal struct {
	pty    console.Console
	cmd    *exec.Cmd
	out    *syncBuf
	copied chan struct{}
}

func startOnTerminal(t *testing.T, cmd *exec.Cmd) *terminal {
	t.Helper()
	pty, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pty.Close() })
	if err := pty.Resize(console.WinSize{Height: 33, Width: 111}); err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	term := &terminal{pty: pty, cmd: cmd, out: &syncBuf{}, copied: make(chan struct{})}
	go func() {
		defer close(term.copied)
		io.Copy(term.out, pty) // until the last holder of the slave exits
	}()
	return term
}

// wait waits for the process and returns all it wrote.
func (term *terminal) wait() string {
	term.cmd.Wait()
	select {
	case <-term.copied:
	case <-time.After(2 * time.Second):
	}
	return term.out.String()
}

// TestStreamingExecClientGone kills the client mid-exec: the process must
// not outlive it.
func TestStreamingExecClientGone(t *testing.T) {
	requireCrictl(t)
	e := newPodEnv(t)
	id := e.create(t, "gone", "sleep", "3600")
	e.start(t, id)
	for _, c := range []struct {
		tr  string
		tty bool
	}{{"spdy", false}, {"spdy", true}, {"websocket", false}, {"websocket", true}} {
		ctx, cancel := context.WithCancel(context.Background())
		tty, mark := c.tty, fmt.Sprintf("tick%s%v", c.tr, c.tty)
		cmd := crictlCmd(ctx, e.d, "exec", "-i", "-r", c.tr, fmt.Sprintf("-t=%v", tty), id, "sh", "-c", "while true; do echo "+mark+"; sleep 0.1; done")
		var out *syncBuf
		if tty {
			out = startOnTerminal(t, cmd).out
		} else {
			out = &syncBuf{}
			cmd.Stdout = out
			stdin, _ := cmd.StdinPipe() // kept open: only the kill ends the input
			defer stdin.Close()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
		}
		waitFor(t, func() bool { return strings.Contains(out.String(), mark) })
		cancel() // SIGKILL
		cmd.Wait()
		waitFor(t, func() bool {
			ps := e.exec(t, id, "ps", "-o", "args")
			return !strings.Contains(string(ps.Stdout), mark)
		})
	}
}

func TestStreamingErrors(t *testing.T) {
	e := newPodEnv(t)
	ctx := framework.Ctx(t)
	_, err := e.d.Runtime.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: "nosuchcontainer", Cmd: []string{"true"}, Stdout: true})
	if status.Code(err) != codes.NotFound {
		t.Errorf("Exec in an unknown container: %v, want NotFound", err)
	}
	_, err = e.d.Runtime.PortForward(ctx, &runtimeapi.PortForwardRequest{PodSandboxId: "nosuchpod", Port: []int32{80}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("PortForward to an unknown pod: %v, want NotFound", err)
	}
	id := e.create(t, "stopped", "true")
	_, err = e.d.Runtime.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Exec in a created container: %v, want FailedPrecondition", err)
	}
	e.start(t, id)
	e.waitExited(t, id)
	_, err = e.d.Runtime.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: id, Stdout: true})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Attach to an exited container: %v, want FailedPrecondition", err)
	}

	run := e.create(t, "running", "sleep", "3600")
	e.start(t, run)
	_, err = e.d.Runtime.Attach(ctx, &runtimeapi.AttachRequest{ContainerId: run, Stdout: true, Tty: true})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("Attach with tty to a container without: %v, want InvalidArgument", err)
	}
	resp, err := e.d.Runtime.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: run, Cmd: []string{"true"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Url, "http://127.0.0.1:") {
		t.Errorf("URL %q is not on loopback", resp.Url)
	}
	// The first use consumes the token, even one that fails its handshake.
	for i, want := range []int{http.StatusBadRequest, http.StatusNotFound} {
		r, err := http.Post(resp.Url, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode != want {
			t.Errorf("use %d of the URL: HTTP %d, want %d", i+1, r.StatusCode, want)
		}
	}
}

// TestStreamingAttach attaches two clients to a shell: both see its output,
// and the input of one (stdin_once) ends it.
func TestStreamingAttach(t *testing.T) {
	requireCrictl(t)
	e := newPodEnv(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			id, err := e.tryCreate(t, &runtimeapi.ContainerConfig{
				Metadata: &runtimeapi.ContainerMetadata{Name: "sh-" + tr}, Command: []string{"sh"},
				Stdin: true, StdinOnce: true,
			})
			if err != nil {
				t.Fatal(err)
			}
			e.start(t, id)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			watcher := crictlCmd(ctx, e.d, "attach", "-r", tr, id)
			var watched syncBuf
			watcher.Stdout = &watched
			if err := watcher.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond) // attached before the shell prints
			out, _, code := crictl(t, e.d, strings.NewReader("echo hello; echo err >&2\n"), "attach", "-i", "-r", tr, id)
			if !strings.Contains(out, "hello\n") || code != 0 {
				t.Errorf("attach -i = %q exit %d", out, code)
			}
			if st := e.waitExited(t, id); st.ExitCode != 0 {
				t.Errorf("the shell exited %d after its stdin closed", st.ExitCode)
			}
			if err := watcher.Wait(); err != nil || !strings.Contains(watched.String(), "hello\n") {
				t.Errorf("second client: %q, %v", watched.String(), err)
			}
		})
	}
}

func TestStreamingPortForward(t *testing.T) {
	requireCrictl(t)
	e := newPodEnv(t)
	if _, err := e.d.Images.PullImage(framework.Ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: nginx}}); err != nil {
		t.Fatal(err)
	}
	id, err := e.tryCreate(t, &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "web"}, Image: &runtimeapi.ImageSpec{Image: nginx}})
	if err != nil {
		t.Fatal(err)
	}
	e.start(t, id)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			web, closed := freePort(t), freePort(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cmd := crictlCmd(ctx, e.d, "port-forward", "-r", tr, e.podID, fmt.Sprintf("%d:80", web), fmt.Sprintf("%d:81", closed))
			var errOut syncBuf
			cmd.Stdout, cmd.Stderr = &errOut, &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				cancel()
				cmd.Wait()
			}()
			waitFor(t, func() bool { return strings.Contains(errOut.String(), fmt.Sprint(closed)) })
			// Several connections, one after another and at once.
			for range 3 {
				for _, body := range parallel(3, func() string { return get(t, web) }) {
					if !strings.Contains(body, "Welcome to nginx!") {
						t.Fatalf("GET through the forward = %q", body)
					}
				}
			}
			if body := tryGet(closed); body != "" {
				t.Errorf("GET to a port nothing listens on = %q", body)
			}
			for dl := time.Now().Add(10 * time.Second); !strings.Contains(errOut.String(), "connection refused"); time.Sleep(50 * time.Millisecond) {
				if time.Now().After(dl) {
					t.Fatalf("no refusal reported; crictl said:\n%s", errOut.String())
				}
			}
			wantProtocol(t, e.d, tr, "SPDY/3.1+portforward.k8s.io")
			if t.Failed() {
				t.Log(errOut.String())
			}
		})
	}
}

// wantProtocol checks, for the websocket transport, that the daemon saw
// protocol offered over a WebSocket: crictl must not have fallen back to
// SPDY.
func wantProtocol(t *testing.T, d *framework.Daemon, transport, protocol string) {
	t.Helper()
	if transport != "websocket" {
		return
	}
	for line := range strings.Lines(d.Log()) {
		if strings.Contains(line, "stream connected") && strings.Contains(line, "websocket: ") && strings.Contains(line, protocol) {
			return
		}
	}
	t.Errorf("the daemon's log shows no WebSocket stream with %s", protocol)
}

func parallel(n int, f func() string) []string {
	out := make(chan string, n)
	for range n {
		go func() { out <- f() }()
	}
	var all []string
	for range n {
		all = append(all, <-out)
	}
	return slices.Clip(all)
}

func get(t *testing.T, port int) string {
	t.Helper()
	var body string
	waitFor(t, func() bool { body = tryGet(port); return body != "" })
	return body
}

func tryGet(port int) string {
	c := http.Client{Timeout: 5 * time.Second}
	r, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return ""
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return string(b)
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// syncBuf is a bytes.Buffer safe for a writing process and a reading test.
type syncBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStreamingPortForwardHostNetwork forwards to a port of a host-network
// pod, which is a port of the host.
func TestStreamingPortForwardHostNetwork(t *testing.T) {
	requireCrictl(t)
	d := framework.StartDaemon(t, framework.Options{Args: framework.MirrorArgs(t)})
	if _, err := d.Images.PullImage(framework.Ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		t.Fatal(err)
	}
	pod := d.PodConfig(t, "hostnet")
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
	e := &podEnv{d: d, pod: pod, podID: runPod(t, d, pod)}
	port, local := freePort(t), freePort(t)
	id := e.create(t, "web", "sh", "-c", fmt.Sprintf("mkdir -p /w && echo hostnet >/w/index.html && exec httpd -f -p 127.0.0.1:%d -h /w", port))
	e.start(t, id)
	if body := tryGetSoon(port); body != "hostnet\n" {
		ns, _ := os.Readlink("/proc/self/ns/net")
		out := e.exec(t, id, "sh", "-c", "readlink /proc/self/ns/net; netstat -ltn; ps")
		t.Fatalf("GET on the host = %q; host %s, container: %s %s", body, ns, out.Stdout, out.Stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := crictlCmd(ctx, d, "port-forward", e.podID, fmt.Sprintf("%d:%d", local, port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
	}()
	if body := get(t, local); body != "hostnet\n" {
		t.Errorf("GET through the forward = %q", body)
	}
}

func tryGetSoon(port int) string {
	for range 50 {
		if body := tryGet(port); body != "" {
			return body
		}
		time.Sleep(100 * time.Millisecond)
	}
	return ""
}

// BenchmarkExecRoundTrip is `crictl exec <id> /bin/true` end to end: the
// Exec RPC, the SPDY handshake, runc exec under the shim, the exit status.
func BenchmarkExecRoundTrip(b *testing.B) {
	d := framework.StartDaemon(b, framework.Options{Args: framework.MirrorArgs(b)})
	ctx := framework.Ctx(b)
	if _, err := d.Images.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		b.Fatal(err)
	}
	pod := d.PodConfig(b, "bench")
	pod.Linux.SecurityContext = &runtimeapi.LinuxSandboxSecurityContext{NamespaceOptions: &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_NODE}}
	podResp, err := d.Runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod})
	if err != nil {
		b.Fatal(err)
	}
	c, err := d.Runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{PodSandboxId: podResp.PodSandboxId, SandboxConfig: pod,
		Config: &runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Image: &runtimeapi.ImageSpec{Image: busybox}, Command: []string{"sleep", "3600"}}})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := d.Runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: c.ContainerId}); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for b.Loop() {
		start := time.Now()
		if _, errOut, code := crictl(b, d, nil, "exec", c.ContainerId, "/bin/true"); code != 0 {
			b.Fatalf("crictl exec: exit %d: %s", code, errOut)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
