package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/containerd/console"
	internalapi "k8s.io/cri-api/pkg/apis"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream"
	"k8s.io/streaming/pkg/httpstream/spdy"
)

// protocolV4 is the remotecommand protocol whose error stream carries a JSON
// Status with the exit code (what kubectl exec speaks to kubelet).
const protocolV4 = "v4.channel.k8s.io"

// execStream runs an interactive command through the runtime's streaming
// server: Exec returns a single-use URL, spoken to with SPDY as kubelet's
// clients do. Only k8s.io/streaming's SPDY transport is used; client-go's
// remotecommand would pull all of client-go into the CLI.
func execStream(ctx context.Context, rt internalapi.RuntimeService, id string, cmd []string, stdin, tty bool) error {
	resp, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: id, Cmd: cmd, Stdin: stdin, Stdout: true, Stderr: !tty, Tty: tty})
	if err != nil {
		return err
	}
	conn, err := dialStream(ctx, resp.Url)
	if err != nil {
		return err
	}
	defer conn.Close()

	var term console.Console
	if tty {
		if c, err := console.ConsoleFromFile(os.Stdin); err == nil {
			term = c
			if err := term.SetRaw(); err == nil {
				defer term.Reset()
			}
		}
	}
	errStream, err := newStream(conn, "error")
	if err != nil {
		return err
	}
	if stdin {
		s, err := newStream(conn, "stdin")
		if err != nil {
			return err
		}
		go func() { io.Copy(s, os.Stdin); s.Close() }()
	}
	outDone := make(chan struct{})
	s, err := newStream(conn, "stdout")
	if err != nil {
		return err
	}
	go func() { io.Copy(os.Stdout, s); close(outDone) }()
	errDone := make(chan struct{})
	if tty {
		close(errDone)
		if err := followResize(conn, term); err != nil {
			return err
		}
	} else {
		s, err := newStream(conn, "stderr")
		if err != nil {
			return err
		}
		go func() { io.Copy(os.Stderr, s); close(errDone) }()
	}
	raw, _ := io.ReadAll(errStream)
	<-outDone
	<-errDone
	return execStatus(raw)
}

func dialStream(ctx context.Context, url string) (httpstream.Connection, error) {
	rt, err := spdy.NewRoundTripper(nil)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(httpstream.HeaderProtocolVersion, protocolV4)
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	if p := resp.Header.Get(httpstream.HeaderProtocolVersion); p != protocolV4 {
		resp.Body.Close()
		return nil, fmt.Errorf("streaming server speaks %q, want %s", p, protocolV4)
	}
	return rt.NewConnection(resp)
}

func newStream(conn httpstream.Connection, kind string) (httpstream.Stream, error) {
	h := http.Header{}
	h.Set("streamType", kind)
	s, err := conn.CreateStream(h)
	if err != nil {
		return nil, fmt.Errorf("create %s stream: %w", kind, err)
	}
	if kind == "error" {
		s.Close() // the client only reads it
	}
	return s, nil
}

// followResize sends the terminal size now and on each SIGWINCH.
func followResize(conn httpstream.Connection, term console.Console) error {
	s, err := newStream(conn, "resize")
	if err != nil {
		return err
	}
	if term == nil {
		return nil
	}
	send := func() {
		if sz, err := term.Size(); err == nil {
			json.NewEncoder(s).Encode(map[string]uint16{"Width": sz.Width, "Height": sz.Height})
		}
	}
	send()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		for range winch {
			send()
		}
	}()
	return nil
}

// execStatus turns the error stream's Status into the exit code.
func execStatus(raw []byte) error {
	if len(raw) == 0 {
		return nil
	}
	var st struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		Reason  string `json:"reason"`
		Details struct {
			Causes []struct {
				Reason  string `json:"reason"`
				Message string `json:"message"`
			} `json:"causes"`
		} `json:"details"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("exec: %s", raw)
	}
	if st.Status == "Success" {
		return nil
	}
	for _, c := range st.Details.Causes {
		if c.Reason == "ExitCode" {
			if code, err := strconv.Atoi(c.Message); err == nil {
				return exitError{code: code}
			}
		}
	}
	return fmt.Errorf("exec: %s", st.Message)
}
