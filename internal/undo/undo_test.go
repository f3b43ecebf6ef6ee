package undo

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestRunReverseOrderAndAllSteps(t *testing.T) {
	var got []string
	var s Stack
	s.Push("a", func(context.Context) error { got = append(got, "a"); return nil })
	s.Push("b", func(context.Context) error { got = append(got, "b"); return errors.New("boom") })
	s.Push("c", func(ctx context.Context) error {
		got = append(got, "c")
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the request was cancelled: the undo must still run
	err := s.Run(ctx)
	if strings.Join(got, "") != "cba" {
		t.Errorf("order = %v, want c b a", got)
	}
	if err == nil || !strings.Contains(err.Error(), "undo b: boom") || strings.Contains(err.Error(), "undo c") {
		t.Errorf("err = %v", err)
	}
	if err := s.Run(context.Background()); err != nil || len(got) != 3 {
		t.Errorf("second Run re-ran steps: %v %v", err, got)
	}
}
