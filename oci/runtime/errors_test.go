package runtime

import (
	"context"
	"errors"
	"testing"

	"github.com/containerd/errdefs"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want error
	}{
		{"container does not exist", errdefs.ErrNotFound},
		{"container with given ID already exists", errdefs.ErrAlreadyExists},
		{"container not running", errdefs.ErrFailedPrecondition},
		{"cannot start a container that has stopped", errdefs.ErrFailedPrecondition},
		{"exec: \"nope\": executable file not found in $PATH", errdefs.ErrInternal},
	} {
		err := classify(context.Background(), "op", "id", errors.New(tc.msg), "")
		if !errors.Is(err, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.msg, err, tc.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := classify(ctx, "op", "id", errors.New("signal: killed"), ""); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v", err)
	}
}

func TestLogMessages(t *testing.T) {
	log := []byte(`{"level":"warning","msg":"deprecated","time":"x"}
{"level":"error","msg":"container does not exist","time":"x"}
not json
`)
	if got := logMessages(log, true); got != "container does not exist" {
		t.Errorf("errors only: %q", got)
	}
	if got := logMessages(log, false); got != "deprecated; container does not exist; not json" {
		t.Errorf("all: %q", got)
	}
	for _, e := range []string{
		`exit status 1: {"level":"error","msg":"container does not exist"}`,
		`/usr/local/sbin/runc did not terminate successfully: exit status 1: {"level":"error","msg":"container does not exist"}` + "\n",
	} {
		if got := goRuncMessage(errors.New(e)); got != "container does not exist" {
			t.Errorf("go-runc error %q: %q", e, got)
		}
	}
}
