package oci

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/oci/shim"
)

// shimDeathGrace bounds the wait for a shim whose event stream ended to be
// seen exited; a live shim whose stream broke is left alone.
const shimDeathGrace = 2 * time.Second

// shimSet holds the one shim of each pod that has containers, and turns
// their exit events into container state.
type shimSet struct {
	m  *Manager
	mu sync.Mutex
	// by sandbox id; launched before the pod's first container needs it.
	shims map[string]*shim.Client
	// launching holds a channel, closed when done, for each launch in
	// flight: launches of different pods run at once, and whoever wants a
	// pod's shim meanwhile waits for its launch instead of starting another.
	launching map[string]chan struct{}
}

func newShimSet(m *Manager) *shimSet {
	return &shimSet{m: m, shims: map[string]*shim.Client{}, launching: map[string]chan struct{}{}}
}

// shimDir is a pod's shim state dir.
func (s *shimSet) shimDir(sandboxID string) string {
	return Layout{s.m.opts.State}.ShimDir(sandboxID)
}

// prelaunchTimeout bounds a launch nobody waits for yet.
const prelaunchTimeout = time.Minute

// get returns the pod's shim, launching it on first use.
func (s *shimSet) get(ctx context.Context, sandboxID string, h Handler) (*shim.Client, error) {
	c, err := s.registeredOrLocked(ctx, sandboxID)
	if c != nil || err != nil {
		return c, err
	}
	done := s.claimLaunch(sandboxID)
	s.mu.Unlock()
	return s.launch(ctx, sandboxID, h, done)
}

// registeredOrLocked returns the pod's registered shim, waiting first for a
// launch of it in flight. When there is neither, it returns nil with s.mu
// held, for the caller to launch or connect without a race.
func (s *shimSet) registeredOrLocked(ctx context.Context, sandboxID string) (*shim.Client, error) {
	for {
		s.mu.Lock()
		if c, ok := s.shims[sandboxID]; ok {
			s.mu.Unlock()
			return c, nil
		}
		wait, ok := s.launching[sandboxID]
		if !ok {
			return nil, nil
		}
		s.mu.Unlock()
		if err := waitFor(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// prelaunch starts launching the pod's shim in the background, so that the
// pod's first container does not wait for it (RunPodSandbox still has its
// network to set up meanwhile). A failure is left for get to meet again.
func (s *shimSet) prelaunch(sandboxID string, h Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.shims[sandboxID]; ok || s.launching[sandboxID] != nil {
		return
	}
	done := s.claimLaunch(sandboxID)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), prelaunchTimeout)
		defer cancel()
		if _, err := s.launch(ctx, sandboxID, h, done); err != nil {
			klog.InfoS("Shim prelaunch failed; the pod's first container launches it", "podSandboxID", sandboxID, "err", err)
		}
	}()
}

// claimLaunch marks a launch of the pod's shim in flight. Caller holds s.mu.
func (s *shimSet) claimLaunch(sandboxID string) chan struct{} {
	done := make(chan struct{})
	s.launching[sandboxID] = done
	return done
}

// launch runs a claimed launch and publishes its outcome.
func (s *shimSet) launch(ctx context.Context, sandboxID string, h Handler, done chan struct{}) (*shim.Client, error) {
	c, err := shim.Launch(ctx, shim.Options{
		SandboxID:   sandboxID,
		StateDir:    s.shimDir(sandboxID),
		RuntimePath: h.Path,
		RuntimeRoot: s.m.runtimeRoot(h),
		Binary:      s.m.opts.Binary,
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.launching, sandboxID)
	close(done)
	if err != nil {
		return nil, err
	}
	s.adopt(sandboxID, c)
	return c, nil
}

func waitFor(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// adopt starts following a shim's events. Caller holds s.mu.
func (s *shimSet) adopt(sandboxID string, c *shim.Client) {
	s.shims[sandboxID] = c
	go func() {
		for st := range c.Events() {
			s.m.onShimState(st)
		}
		s.lost(sandboxID, c)
	}()
}

// lost runs when a shim's event stream ends. Shutdown unregisters a shim
// before ending it, so a shim still registered whose process is gone died
// (killed, crashed): its containers are settled as the shim cannot.
func (s *shimSet) lost(sandboxID string, c *shim.Client) {
	s.mu.Lock()
	registered := s.shims[sandboxID] == c
	s.mu.Unlock()
	if !registered || !c.Dead(shimDeathGrace) {
		return
	}
	s.mu.Lock()
	if s.shims[sandboxID] == c {
		delete(s.shims, sandboxID)
	}
	s.mu.Unlock()
	c.Close()
	s.m.shimDied(sandboxID)
}

// lookup returns the pod's shim if it runs, reconnecting to it if this
// daemon has not talked to it since it started (a pod with only an infra
// process has no container record to trigger that at recovery).
func (s *shimSet) lookup(sandboxID string) (*shim.Client, error) {
	return s.reconnect(context.Background(), sandboxID)
}

// reconnect finds a pod's shim after a daemon restart, or once a launch in
// flight is done.
func (s *shimSet) reconnect(ctx context.Context, sandboxID string) (*shim.Client, error) {
	c, err := s.registeredOrLocked(ctx, sandboxID)
	if c != nil || err != nil {
		return c, err
	}
	defer s.mu.Unlock()
	if c, err = shim.Connect(ctx, s.shimDir(sandboxID)); err != nil {
		return nil, err
	}
	s.adopt(sandboxID, c)
	return c, nil
}

// shutdown ends the pod's shim once its last container is gone.
func (s *shimSet) shutdown(ctx context.Context, sandboxID string) error {
	c, err := s.lookup(sandboxID)
	s.mu.Lock()
	delete(s.shims, sandboxID)
	s.mu.Unlock()
	if err == nil {
		if err := c.Shutdown(ctx); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
			// Refused (a container raced in) or unreachable: it stays
			// this pod's shim.
			s.mu.Lock()
			if _, taken := s.shims[sandboxID]; !taken {
				s.shims[sandboxID] = c
			}
			s.mu.Unlock()
			return err
		}
		c.Close()
	}
	if err := os.RemoveAll(s.shimDir(sandboxID)); err != nil {
		return err
	}
	return nil
}

func shimCreate(r Record) shim.CreateRequest {
	cfg := r.Config
	return shim.CreateRequest{
		ID: r.ID, Bundle: r.Dir, LogPath: r.LogPath,
		Stdin: cfg.GetStdin(), StdinOnce: cfg.GetStdinOnce(), Tty: cfg.GetTty(),
	}
}

func shimCreateInfra(sandboxID, dir string) shim.CreateRequest {
	return shim.CreateRequest{ID: sandboxID, Bundle: dir}
}
