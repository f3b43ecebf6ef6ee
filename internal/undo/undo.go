// Package undo is the one rollback mechanism of a create: each step that
// succeeds pushes its inverse; on failure the inverses run in reverse order
// under a detached, time-bounded context, so a cancelled request still leaves
// nothing behind.
package undo

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Timeout bounds a whole rollback.
const Timeout = time.Minute

// Stack holds the inverses of the steps done so far.
type Stack struct {
	steps []step
}

type step struct {
	name string
	fn   func(context.Context) error
}

// Push records the inverse of a step that just succeeded.
func (s *Stack) Push(name string, fn func(context.Context) error) {
	s.steps = append(s.steps, step{name, fn})
}

// Run undoes every recorded step, newest first, and reports those that failed.
// It runs them all even when one fails: each leaks something different.
func (s *Stack) Run(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), Timeout)
	defer cancel()
	var errs []error
	for i := len(s.steps) - 1; i >= 0; i-- {
		if err := s.steps[i].fn(ctx); err != nil {
			errs = append(errs, fmt.Errorf("undo %s: %w", s.steps[i].name, err))
		}
	}
	s.steps = nil
	return errors.Join(errs...)
}
