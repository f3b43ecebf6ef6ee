package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/containerd/errdefs"
)

// classes maps fragments of runc's and crun's error messages to error classes.
// The runtimes offer nothing better than their message text to tell these apart.
var classes = []struct {
	fragment string
	class    error
}{
	{"does not exist", errdefs.ErrNotFound},
	{"already exists", errdefs.ErrAlreadyExists},
	{"not running", errdefs.ErrFailedPrecondition},
	{"has stopped", errdefs.ErrFailedPrecondition},
	{"already running", errdefs.ErrFailedPrecondition},
	{"not in created state", errdefs.ErrFailedPrecondition},
	{"cannot start", errdefs.ErrFailedPrecondition},
}

// classify wraps a failed invocation: the runtime's message and an errdefs
// class. A runtime failure we cannot classify is ErrInternal: the request may
// have been fine, the runtime could not carry it out.
func classify(ctx context.Context, op, id string, err error, msg string) error {
	if err == nil {
		return nil
	}
	if msg == "" {
		msg = err.Error()
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("runtime %s %s: %s: %w", op, id, msg, ctxErr)
	}
	var class error = errdefs.ErrInternal
	lower := strings.ToLower(msg)
	for _, c := range classes {
		if strings.Contains(lower, c.fragment) {
			class = c.class
			break
		}
	}
	return fmt.Errorf("runtime %s %s: %s: %w", op, id, msg, class)
}

// logMessages turns the runtime's JSON log lines (--log-format json) into
// their messages; lines that are not JSON are kept verbatim. With onlyErrors,
// only error-level entries are kept.
func logMessages(out []byte, onlyErrors bool) string {
	var msgs []string
	for _, line := range bytes.Split(out, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var entry struct{ Level, Msg string }
		if json.Unmarshal(line, &entry) != nil || entry.Msg == "" {
			if !onlyErrors {
				msgs = append(msgs, string(line))
			}
			continue
		}
		if !onlyErrors || entry.Level == "error" || entry.Level == "fatal" {
			msgs = append(msgs, entry.Msg)
		}
	}
	return strings.Join(msgs, "; ")
}

// goRuncMessage extracts the runtime's messages from a go-runc error, which
// reads "<runtime> did not terminate successfully: exit status N: <runtime
// output>" (go-runc 1.1 and later; "exit status N: <output>" before).
func goRuncMessage(err error) string {
	s := err.Error()
	if i := strings.Index(s, "exit status "); i >= 0 {
		if _, out, ok := strings.Cut(s[i:], ": "); ok {
			if msg := logMessages([]byte(out), false); msg != "" {
				return msg
			}
		}
	}
	return s
}
