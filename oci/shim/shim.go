package shim

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/containerd/errdefs"

	"github.com/nodeagent/nodeagent/oci/runtime"
)

// shim is the server side: the containers of one pod.
type shim struct {
	sandboxID string
	stateDir  string
	rt        *runtime.Runtime
	reaper    *reaper
	events    *eventHub
	ptys      atomic.Uint64
	execs     atomic.Uint64

	mu         sync.Mutex
	containers map[string]*container
	// draining: Shutdown was accepted; no new container may be created.
	draining bool
}

func newShim(sandboxID, stateDir string, rt *runtime.Runtime, r *reaper) *shim {
	return &shim{
		sandboxID:  sandboxID,
		stateDir:   stateDir,
		rt:         rt,
		reaper:     r,
		events:     newEventHub(),
		containers: map[string]*container{},
	}
}

// reserve claims id for a container being created.
func (s *shim) reserve(id string) (*container, error) {
	if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
		return nil, fmt.Errorf("container id %q: %w", id, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return nil, fmt.Errorf("shim of sandbox %s is shutting down: %w", s.sandboxID, errdefs.ErrFailedPrecondition)
	}
	if _, ok := s.containers[id]; ok {
		return nil, fmt.Errorf("container %s: %w", id, errdefs.ErrAlreadyExists)
	}
	c := newContainer(id)
	s.containers[id] = c
	return c, nil
}

func (s *shim) release(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.containers, id)
}

// lookup finds a created container.
func (s *shim) lookup(id string) (*container, error) {
	s.mu.Lock()
	c, ok := s.containers[id]
	s.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("container %s: %w", id, errdefs.ErrNotFound)
	}
	if !c.isCreated() {
		return nil, fmt.Errorf("container %s is being created: %w", id, errdefs.ErrFailedPrecondition)
	}
	return c, nil
}

func (s *shim) states() []State {
	s.mu.Lock()
	cs := make([]*container, 0, len(s.containers))
	for _, c := range s.containers {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	var out []State
	for _, c := range cs {
		if c.isCreated() {
			out = append(out, c.state())
		}
	}
	slices.SortFunc(out, func(a, b State) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// shutdown accepts the request to exit if no container is left.
func (s *shim) shutdown() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.containers); n > 0 {
		return fmt.Errorf("shim of sandbox %s still has %d container(s): %w", s.sandboxID, n, errdefs.ErrFailedPrecondition)
	}
	s.draining = true
	return nil
}

func (s *shim) pidFile(id string) string {
	return filepath.Join(s.stateDir, id+".pid")
}

// consolePath is short (a counter, not the container id) so that the socket
// path stays under the 108-byte limit wherever shim.sock does.
func (s *shim) consolePath() string {
	return filepath.Join(s.stateDir, fmt.Sprintf("t%d", s.ptys.Add(1)))
}
