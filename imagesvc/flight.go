package imagesvc

import (
	"context"
	"sync"
)

// flights runs one fn per key at a time and hands its result to every
// caller that asked meanwhile (singleflight). The work runs on a context
// detached from any one caller: a caller that gives up does not kill the
// work the others wait for. When the last one leaves, the work is cancelled
// and that caller waits for it to finish, so that a cancelled pull has
// cleaned up by the time it returns (and a result that made it anyway is
// not lost: the caller gets it, and owns it).
type flights struct {
	mu    sync.Mutex
	calls map[string]*flightCall
}

type flightCall struct {
	done    chan struct{}
	val     any
	err     error
	waiters int
	cancel  context.CancelFunc
}

func (f *flights) do(ctx context.Context, key string, fn func(context.Context) (any, error)) (any, error) {
	f.mu.Lock()
	if f.calls == nil {
		f.calls = make(map[string]*flightCall)
	}
	c, ok := f.calls[key]
	if !ok {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		c = &flightCall{done: make(chan struct{}), cancel: cancel}
		f.calls[key] = c
		go f.run(fctx, key, c, fn)
	}
	c.waiters++
	f.mu.Unlock()

	select {
	case <-c.done:
		return c.val, c.err
	case <-ctx.Done():
		if !f.leave(key, c) {
			return nil, context.Cause(ctx)
		}
		<-c.done
		if c.err == nil {
			return c.val, nil
		}
		return nil, context.Cause(ctx)
	}
}

func (f *flights) run(ctx context.Context, key string, c *flightCall, fn func(context.Context) (any, error)) {
	c.val, c.err = fn(ctx)
	f.mu.Lock()
	if f.calls[key] == c {
		delete(f.calls, key)
	}
	f.mu.Unlock()
	c.cancel()
	close(c.done)
}

// leave drops a waiter; the last one out cancels the work and unlists it so
// that a new caller starts afresh instead of joining a dying call.
func (f *flights) leave(key string, c *flightCall) bool {
	f.mu.Lock()
	c.waiters--
	last := c.waiters == 0
	if last && f.calls[key] == c {
		delete(f.calls, key)
	}
	f.mu.Unlock()
	if last {
		c.cancel()
	}
	return last
}
