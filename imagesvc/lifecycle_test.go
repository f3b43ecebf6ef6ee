package imagesvc

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	crierrors "k8s.io/cri-api/pkg/errors"

	"github.com/nodeagent/nodeagent/internal/store"
)

func TestStalledPullIsCancelled(t *testing.T) {
	cr := newCraftedRegistry(t)
	ci := newCraftedImage(t, tarBytes(t, tfile("big", strings.Repeat("x", 1<<20))))
	ci.publish(cr, "t")
	layer := ci.manifest.Layers[0].Digest.String()
	cr.serveBlob = func(w http.ResponseWriter, r *http.Request, dg string, data []byte) {
		if dg != layer {
			w.Write(data)
			return
		}
		w.Write(data[:len(data)/2])
		w.(http.Flusher).Flush()
		cr.mu.Unlock() // let other requests through while this one stalls
		defer cr.mu.Lock()
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}
	s, _ := testService(t, Config{ProgressTimeout: 200 * time.Millisecond}, cr.host)
	start := time.Now()
	progress := make(chan []PullProgress, 1)
	go func() {
		defer close(progress)
		for range 10 {
			time.Sleep(15 * time.Millisecond)
			if p := s.Progress(); len(p) == 1 && len(p[0].Layers) == 1 && p[0].Layers[0].Done > 0 {
				progress <- p
				return
			}
		}
	}()
	_, err := s.Pull(context.Background(), cr.host+"/stall:t", nil)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, crierrors.ErrRegistryUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("stall noticed after %v", d)
	}
	seen := <-progress
	if len(seen) != 1 || seen[0].Ref != cr.host+"/stall:t" || seen[0].Layers[0].State != LayerDownloading ||
		seen[0].Layers[0].Total != ci.manifest.Layers[0].Size {
		t.Errorf("progress during the pull: %+v", seen)
	}
	if p := s.Progress(); len(p) != 0 {
		t.Errorf("progress after the pull: %+v", p)
	}
	requireClean(t, s)
}

func TestSlowMovingPullSurvives(t *testing.T) {
	cr := newCraftedRegistry(t)
	ci := newCraftedImage(t, tarBytes(t, tfile("big", strings.Repeat("x", 1<<20))))
	ci.publish(cr, "t")
	cr.serveBlob = func(w http.ResponseWriter, r *http.Request, dg string, data []byte) {
		cr.mu.Unlock()
		defer cr.mu.Lock()
		// Total time well past the progress timeout, never a gap near it.
		for i := 0; i < len(data); i += len(data)/8 + 1 {
			w.Write(data[i:min(i+len(data)/8+1, len(data))])
			w.(http.Flusher).Flush()
			time.Sleep(60 * time.Millisecond)
		}
	}
	s, _ := testService(t, Config{ProgressTimeout: 250 * time.Millisecond}, cr.host)
	if _, err := s.Pull(context.Background(), cr.host+"/slow:t", nil); err != nil {
		t.Fatal(err)
	}
}

func TestCancelledPullCleansUp(t *testing.T) {
	cr := newCraftedRegistry(t)
	ci := newCraftedImage(t, tarBytes(t, tfile("big", strings.Repeat("x", 1<<20))))
	ci.publish(cr, "t")
	started := make(chan struct{})
	cr.serveBlob = func(w http.ResponseWriter, r *http.Request, dg string, data []byte) {
		if dg != ci.manifest.Layers[0].Digest.String() {
			w.Write(data)
			return
		}
		w.Write(data[:100])
		w.(http.Flusher).Flush()
		close(started)
		cr.mu.Unlock()
		defer cr.mu.Lock()
		<-r.Context().Done()
	}
	s, _ := testService(t, Config{}, cr.host)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	if _, err := s.Pull(ctx, cr.host+"/cancel:t", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	// The detached work notices the cancellation and removes its files.
	deadline := time.Now().Add(5 * time.Second)
	for len(dirNames(t, s.layout.ingest)) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	requireClean(t, s)
}

// TestRestartCollectsLeftovers: records survive a restart; what an
// interrupted pull left (work files, a snapshot or blob no record holds) is
// removed; a record whose snapshot vanished is dropped.
func TestRestartCollectsLeftovers(t *testing.T) {
	tr := newTestRegistry(t)
	keep := tr.push(t, "keep:1", testImage(t, v1.Config{}, testLayer(t, nil, tfile("k", "k"))))
	lose := tr.push(t, "lose:1", testImage(t, v1.Config{}, testLayer(t, nil, tfile("l", "l"))))
	root := t.TempDir()
	cfg := Config{Root: root, Registries: map[string]Registry{tr.host: {PlainHTTP: true}}}
	db, err := store.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []string{keep, lose} {
		if _, err := s.Pull(context.Background(), r, nil); err != nil {
			t.Fatal(err)
		}
	}
	lost, _ := s.Lowers(lose)
	usage := s.FsInfo()
	db.Close()

	// Simulate a crash mid-pull and a snapshot deleted behind our back.
	orphanSnap := filepath.Join(s.layout.snaps, strings.Repeat("a", 64), "fs")
	orphanBlob := filepath.Join(s.layout.blobs, strings.Repeat("b", 64))
	for _, d := range []string{orphanSnap, filepath.Join(s.layout.ingest, "layer-1", "fs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(orphanBlob, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Dir(lost[0])); err != nil {
		t.Fatal(err)
	}

	db, err = store.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err = New(cfg, db)
	if err != nil {
		t.Fatal(err)
	}
	if imgs := s.List(); len(imgs) != 1 || imgs[0].RepoTags[0] != keep {
		t.Fatalf("after restart: %+v", imgs)
	}
	if names := dirNames(t, s.layout.ingest); len(names) != 0 {
		t.Errorf("ingest holds %v", names)
	}
	for _, p := range []string{orphanSnap, orphanBlob} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s survived", p)
		}
	}
	if got := s.FsInfo(); got.UsedBytes == 0 || got.UsedBytes >= usage.UsedBytes {
		t.Errorf("usage %d after restart, %d before", got.UsedBytes, usage.UsedBytes)
	}
	if _, err := s.Pull(context.Background(), lose, nil); err != nil {
		t.Errorf("re-pull of the dropped image: %v", err)
	}
}
