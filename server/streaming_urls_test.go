package server

import (
	"errors"
	"net/url"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// clock is a fake time source the test moves by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestServer(c *clock) *streamServer {
	urls := newURLCache(url.URL{Scheme: "https", Host: "127.0.0.1:1"}, time.Minute)
	urls.now = c.now
	return &streamServer{urls: urls}
}

func token(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return path.Base(u.Path)
}

func TestURLsAreSingleUseAndExpire(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	st := newTestServer(c)
	exec := &runtimeapi.ExecRequest{ContainerId: "c", Cmd: []string{"true"}, Stdout: true}
	resp, err := st.GetExec(exec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Url, "https://127.0.0.1:1/exec/") {
		t.Errorf("URL %q", resp.Url)
	}
	tok := token(t, resp.Url)
	if _, ok := consume[*runtimeapi.AttachRequest](st.urls, tok); ok {
		t.Error("an exec URL served an attach")
	}
	if _, ok := consume[*runtimeapi.ExecRequest](st.urls, tok); ok {
		t.Error("a URL tried with the wrong kind stayed valid")
	}

	resp, _ = st.GetExec(exec)
	tok = token(t, resp.Url)
	if got, ok := consume[*runtimeapi.ExecRequest](st.urls, tok); !ok || got != exec {
		t.Errorf("first use = %v, %v", got, ok)
	}
	if _, ok := consume[*runtimeapi.ExecRequest](st.urls, tok); ok {
		t.Error("second use succeeded")
	}

	resp, _ = st.GetExec(exec)
	c.t = c.t.Add(time.Minute)
	if _, ok := consume[*runtimeapi.ExecRequest](st.urls, token(t, resp.Url)); ok {
		t.Error("a URL a minute old was valid")
	}
}

func TestURLsPendingAreBounded(t *testing.T) {
	c := &clock{t: time.Unix(1000, 0)}
	st := newTestServer(c)
	pf := &runtimeapi.PortForwardRequest{PodSandboxId: "p", Port: []int32{80}}
	for range maxPendingURLs {
		if _, err := st.GetPortForward(pf); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.GetPortForward(pf); !errors.Is(err, errdefs.ErrResourceExhausted) {
		t.Errorf("URL %d: %v, want ResourceExhausted", maxPendingURLs+1, err)
	}
	// Expired URLs make room.
	c.t = c.t.Add(time.Minute)
	if _, err := st.GetPortForward(pf); err != nil {
		t.Errorf("after expiry: %v", err)
	}
}

func TestStreamRequestsChecked(t *testing.T) {
	st := newTestServer(&clock{t: time.Unix(1000, 0)})
	for name, req := range map[string]*runtimeapi.ExecRequest{
		"no cmd":       {ContainerId: "c", Stdout: true},
		"tty + stderr": {ContainerId: "c", Cmd: []string{"sh"}, Tty: true, Stdout: true, Stderr: true},
		"no stream":    {ContainerId: "c", Cmd: []string{"sh"}},
	} {
		if _, err := st.GetExec(req); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	if _, err := st.GetAttach(&runtimeapi.AttachRequest{ContainerId: "c"}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("attach without streams: %v, want InvalidArgument", err)
	}
}
