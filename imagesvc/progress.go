package imagesvc

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	crierrors "k8s.io/cri-api/pkg/errors"
)

// LayerState is where a layer of a pull stands.
type LayerState string

const (
	LayerWaiting     LayerState = "waiting"     // queued for a download slot
	LayerDownloading LayerState = "downloading" // bytes flowing, unpacked as they come
	LayerDone        LayerState = "done"        // unpacked and verified
	LayerExists      LayerState = "exists"      // already on disk, not fetched
	LayerFailed      LayerState = "failed"
)

// LayerProgress is one layer of a live pull.
type LayerProgress struct {
	Digest string
	Total  int64 // compressed bytes
	Done   int64 // compressed bytes received
	State  LayerState
}

// PullProgress is one live pull, for the debug CLI and /metrics.
type PullProgress struct {
	Ref     string
	Started time.Time
	Layers  []LayerProgress
}

// layerTrack is shared by every pull waiting on the same layer.
type layerTrack struct {
	digest string
	total  int64
	done   atomic.Int64
	state  atomic.Pointer[LayerState]
}

func newLayerTrack(digest string, total int64, st LayerState) *layerTrack {
	t := &layerTrack{digest: digest, total: total}
	t.set(st)
	return t
}

func (t *layerTrack) set(st LayerState) { t.state.Store(&st) }

type pullTrack struct {
	ref     string
	started time.Time
	mu      sync.Mutex
	layers  []*layerTrack
}

// show lists t as one of the pull's layers, in place of prev when the
// pull already listed that layer: a layer is one line, however many
// rounds it took to get hold of it.
func (p *pullTrack) show(prev, t *layerTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if i := slices.Index(p.layers, prev); prev != nil && i >= 0 {
		p.layers[i] = t
		return
	}
	p.layers = append(p.layers, t)
}

// board lists live pulls.
type board struct {
	mu    sync.Mutex
	pulls map[*pullTrack]struct{}
}

func (b *board) start(ref string) *pullTrack {
	p := &pullTrack{ref: ref, started: time.Now()}
	b.mu.Lock()
	if b.pulls == nil {
		b.pulls = make(map[*pullTrack]struct{})
	}
	b.pulls[p] = struct{}{}
	b.mu.Unlock()
	return p
}

func (b *board) finish(p *pullTrack) {
	b.mu.Lock()
	delete(b.pulls, p)
	b.mu.Unlock()
}

func (b *board) snapshot() []PullProgress {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]PullProgress, 0, len(b.pulls))
	for p := range b.pulls {
		pp := PullProgress{Ref: p.ref, Started: p.started}
		p.mu.Lock()
		for _, l := range p.layers {
			pp.Layers = append(pp.Layers, LayerProgress{Digest: l.digest, Total: l.total, Done: l.done.Load(), State: *l.state.Load()})
		}
		p.mu.Unlock()
		out = append(out, pp)
	}
	slices.SortFunc(out, func(a, b PullProgress) int { return a.Started.Compare(b.Started) })
	return out
}

// watchdog cancels its context when no byte arrived for window: pulls are
// limited by progress, never by total time.
type watchdog struct {
	window time.Duration
	timer  *time.Timer
}

func newWatchdog(ctx context.Context, window time.Duration) (context.Context, *watchdog, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stalled := fmt.Errorf("no data from the registry for %s (config key images.progress_timeout): %w: %w", window, crierrors.ErrRegistryUnavailable, context.DeadlineExceeded)
	w := &watchdog{window: window, timer: time.AfterFunc(window, func() { cancel(stalled) })}
	return ctx, w, func() { w.timer.Stop(); cancel(context.Canceled) }
}

// reader passes r through, re-arming the watchdog and counting into done on
// every byte that arrives.
func (w *watchdog) reader(r io.Reader, done *atomic.Int64) io.Reader {
	return &watchedReader{r: r, w: w, done: done}
}

type watchedReader struct {
	r    io.Reader
	w    *watchdog
	done *atomic.Int64
}

func (r *watchedReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.w.timer.Reset(r.w.window)
		if r.done != nil {
			r.done.Add(int64(n))
		}
	}
	return n, err
}
