package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"
	"k8s.io/streaming/pkg/httpstream/wsstream"
	utilexec "k8s.io/utils/exec"
)

// Remotecommand v5 over WebSocket is what kubectl (1.30+) and crictl's
// websocket transport speak. Each binary message starts with its channel:
//
//	client -> server   0 stdin, 4 resize (JSON {"Width","Height"}),
//	                   255 c: close channel c (stdin's EOF)
//	server -> client   1 stdout, 2 stderr, 3 status (JSON metav1.Status),
//	                   then the server closes the connection
//
// wsstream frames the channels and honours the close signal for the
// protocol named v5.channel.k8s.io; what is left is to run the command
// and write its status as v4 does.

// runStreams runs an exec or attach on a stream's channels.
type runStreams func(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, resize <-chan remotecommand.TerminalSize) error

func serveV5(w http.ResponseWriter, r *http.Request, opts *remotecommand.Options, idle time.Duration, run runStreams) {
	use := func(want bool, t wsstream.ChannelType) wsstream.ChannelType {
		if want {
			return t
		}
		return wsstream.IgnoreChannel
	}
	channels := []wsstream.ChannelType{
		remotecommand.StreamStdIn:  use(opts.Stdin, wsstream.ReadChannel),
		remotecommand.StreamStdOut: use(opts.Stdout, wsstream.WriteChannel),
		remotecommand.StreamStdErr: use(opts.Stderr, wsstream.WriteChannel),
		remotecommand.StreamErr:    wsstream.WriteChannel,
		remotecommand.StreamResize: use(opts.TTY, wsstream.ReadChannel),
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(idle)
	_, ch, err := conn.Open(w, r)
	if err != nil {
		klog.InfoS("WebSocket stream failed to open", "err", err)
		return
	}
	defer conn.Close()

	// Streams not asked for stay nil interfaces.
	var in io.Reader
	var out, errOut io.WriteCloser
	var resize chan remotecommand.TerminalSize
	if opts.Stdin {
		in = ch[remotecommand.StreamStdIn]
	}
	if opts.Stdout {
		out = ch[remotecommand.StreamStdOut]
	}
	if opts.Stderr {
		errOut = ch[remotecommand.StreamStdErr]
	}
	if opts.TTY {
		resize = make(chan remotecommand.TerminalSize)
		go decodeResize(r.Context(), ch[remotecommand.StreamResize], resize)
	}
	err = run(r.Context(), in, out, errOut, resize)
	b, _ := json.Marshal(statusOf(err))
	ch[remotecommand.StreamErr].Write(b)
}

// decodeResize sends the sizes the client writes until its channel ends,
// or ctx does: a consumer that stopped reading must not pin it.
func decodeResize(ctx context.Context, r io.Reader, resize chan<- remotecommand.TerminalSize) {
	defer close(resize)
	d := json.NewDecoder(r)
	for {
		var ts remotecommand.TerminalSize
		if err := d.Decode(&ts); err != nil {
			return
		}
		select {
		case resize <- ts:
		case <-ctx.Done():
			return
		}
	}
}

// streamStatus is the subset of metav1.Status that the v4 and v5 protocols
// write on the status channel; clients read the exit code from a cause.
type streamStatus struct {
	Metadata struct{}       `json:"metadata"`
	Status   string         `json:"status"`
	Message  string         `json:"message,omitempty"`
	Reason   string         `json:"reason,omitempty"`
	Details  *statusDetails `json:"details,omitempty"`
	Code     int32          `json:"code,omitempty"`
}

type statusDetails struct {
	Causes []statusCause `json:"causes"`
}

type statusCause struct {
	Type    string `json:"reason"`
	Message string `json:"message"`
}

// statusOf is the status of a finished exec or attach, as kubelet writes
// it: success, a non-zero exit with its code, or an internal error.
func statusOf(err error) streamStatus {
	if err == nil {
		return streamStatus{Status: "Success"}
	}
	var exit utilexec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		return streamStatus{
			Status:  "Failure",
			Reason:  remotecommand.NonZeroExitCodeReason,
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exit),
			Details: &statusDetails{Causes: []statusCause{{Type: remotecommand.ExitCodeCauseType, Message: strconv.Itoa(exit.ExitStatus())}}},
		}
	}
	return streamStatus{
		Status:  "Failure",
		Reason:  "InternalError",
		Message: fmt.Sprintf("Internal error occurred: %v", err),
		Code:    http.StatusInternalServerError,
	}
}
