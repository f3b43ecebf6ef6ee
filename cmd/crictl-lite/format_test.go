package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/debugapi"
)

func TestPrintPods(t *testing.T) {
	now := time.Unix(1000, 0)
	pods := []*runtimeapi.PodSandbox{{
		Id: "0123456789abcdef", CreatedAt: now.Add(-90 * time.Second).UnixNano(), State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Attempt: 2},
	}}
	var b bytes.Buffer
	if err := printPods(&b, pods, now); err != nil {
		t.Fatal(err)
	}
	want := "POD ID         CREATED  STATE     NAME  NAMESPACE  ATTEMPT  RUNTIME\n" +
		"0123456789abc  1m ago   NOTREADY  web   default    2        (default)\n"
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestSmallFormats(t *testing.T) {
	now := time.Unix(100000, 0)
	tests := []struct{ got, want string }{
		{age(0, now), "-"},
		{age(now.Add(-5*time.Second).UnixNano(), now), "5s ago"},
		{age(now.Add(-3*time.Hour).UnixNano(), now), "3h ago"},
		{age(now.Add(-72*time.Hour).UnixNano(), now), "3d ago"},
		{humanBytes(512), "512B"},
		{humanBytes(1536), "1.5KiB"},
		{humanBytes(5 << 30), "5.0GiB"},
		{shortID("sha256:0123456789abcdef"), "0123456789abc"},
		{strings.Join(func() []string { r, t := splitTag("localhost:5000/a/b:1.0"); return []string{r, t} }(), " "), "localhost:5000/a/b 1.0"},
		{strings.Join(func() []string { r, t := splitTag("localhost:5000/a/b"); return []string{r, t} }(), " "), "localhost:5000/a/b <none>"},
		{normalizeRef("busybox"), "busybox:latest"},
		{normalizeRef("docker.io/library/busybox:1.36"), "busybox:1.36"},
		{normalizeRef("registry.k8s.io/pause@sha256:ab"), "registry.k8s.io/pause@sha256:ab"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestRenderPull(t *testing.T) {
	t0 := time.Unix(1000, 0)
	pulls := []debugapi.Pull{
		{Ref: "docker.io/library/busybox:latest", Started: t0, Layers: []debugapi.Layer{
			{Digest: "sha256:aaaaaaaaaaaaaaaa", Total: 1000, Done: 500, State: "downloading"},
			{Digest: "sha256:bbbbbbbbbbbbbbbb", Total: 10, Done: 0, State: "exists"},
		}},
		{Ref: "docker.io/library/other:1", Started: t0},
	}
	rates := map[string]sample{}
	lines := renderPull(pulls, "busybox", rates, t0.Add(time.Second))
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "docker.io/library/busybox:latest  (1s)") {
		t.Fatalf("lines = %q", lines)
	}
	if !strings.Contains(lines[1], "downloading [============            ]") || !strings.Contains(lines[1], "500B / 1000B") {
		t.Errorf("layer line = %q", lines[1])
	}
	if !strings.Contains(lines[2], "exists      [========================]") {
		t.Errorf("existing layer line = %q", lines[2])
	}
	pulls[0].Layers[0].Done = 900
	lines = renderPull(pulls, "busybox", rates, t0.Add(2*time.Second))
	if !strings.HasSuffix(lines[1], "120B/s") { // 0.3 * 400B/s, smoothed
		t.Errorf("rate line = %q", lines[1])
	}
	if all := renderPull(pulls, "", map[string]sample{}, t0); len(all) != 4 {
		t.Errorf("all pulls = %q", all)
	}
}

func TestWhyVerdict(t *testing.T) {
	tests := []struct {
		name string
		r    whyReport
		want string
	}{
		{"oom", whyReport{State: "READY", Containers: []whyContainer{{Name: "app", State: "EXITED", ExitCode: 137, Reason: "OOMKilled"}}},
			"container app exited with code 137 (OOMKilled)"},
		{"completed is fine", whyReport{State: "READY", Containers: []whyContainer{{Name: "job", State: "EXITED", Reason: "Completed"}}},
			"nothing wrong found"},
		{"last failed call", whyReport{State: "not created", Calls: []debugapi.Call{
			{Method: "RunPodSandbox", Code: "Internal", Error: "cni: no IPs"}, {Method: "RunPodSandbox", Code: "OK"}}},
			"RunPodSandbox failed: Internal: cni: no IPs"},
		{"not ready", whyReport{State: "NOTREADY"}, "pod is NOTREADY"},
	}
	for _, tt := range tests {
		if got := tt.r.verdict(); got != tt.want {
			t.Errorf("%s: verdict = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestShimArgs(t *testing.T) {
	tests := []struct {
		argv      string
		id, state string
		ok        bool
	}{
		{"/usr/bin/nodeagent shim serve --id abc --state-dir /run/na/shims/abc --runtime runc", "abc", "/run/na/shims/abc", true},
		{"/usr/bin/nodeagent shim launch --id abc --state-dir /x", "", "", false},
		{"/usr/bin/nodeagent --root /x", "", "", false},
		{"sleep shim serve", "", "", false},
	}
	for _, tt := range tests {
		id, st, ok := shimArgs(strings.Fields(tt.argv))
		if id != tt.id || st != tt.state || ok != tt.ok {
			t.Errorf("shimArgs(%q) = %q %q %t", tt.argv, id, st, ok)
		}
	}
}

func TestExecStatus(t *testing.T) {
	var exit exitError
	err := execStatus([]byte(`{"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"42"}]}}`))
	if !errors.As(err, &exit) || exit.code != 42 {
		t.Errorf("non-zero exit: %v", err)
	}
	if err := execStatus([]byte(`{"status":"Success"}`)); err != nil {
		t.Errorf("success: %v", err)
	}
	if err := execStatus(nil); err != nil {
		t.Errorf("empty: %v", err)
	}
	if err := execStatus([]byte(`{"status":"Failure","message":"no such container"}`)); err == nil || errors.As(err, &exit) {
		t.Errorf("failure without exit code: %v", err)
	}
}

func TestOneLine(t *testing.T) {
	err := errors.New("rpc error: code = NotFound desc = no pod \"x\"\nmore")
	if got := oneLine(err); got != `no pod "x"` {
		t.Errorf("oneLine = %q", got)
	}
}
