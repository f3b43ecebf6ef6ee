package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// pulls times cold pulls (the image removed before each), warm pulls (the
// image present) and rounds of concurrent pulls of one image. With the
// registry in-process it also counts blob GETs: a cold pull that fetched
// nothing was not cold, and N concurrent pulls should fetch each blob once.
func (b *bench) pulls(ctx context.Context) error {
	for _, ref := range b.benchImages() {
		if _, err := b.presentBefore(ctx, ref); err != nil {
			return err
		}
	}
	for _, ref := range splitList(b.o.pullImages) {
		if err := b.coldWarmPull(ctx, ref); err != nil {
			return err
		}
	}
	return b.concurrentPull(ctx, b.o.concurrentImage)
}

func (b *bench) coldWarmPull(ctx context.Context, ref string) error {
	if err := b.listBlobs(ctx, ref); err != nil {
		return err
	}
	short := shortRef(ref)
	var cold, warm []time.Duration
	gets := 0
	defer func() {
		b.report.AddLatency("cold pull "+short, cold)
		b.report.AddLatency("warm pull "+short, warm)
		if b.reg != nil && len(cold) > 0 {
			b.report.AddValue("cold pull "+short+": blob GETs per pull", "GETs", round2(float64(gets)/float64(len(cold))))
		}
	}()
	for range b.o.pullIterations {
		if err := b.removeBenchImages(ctx); err != nil {
			return err
		}
		b.resetCounters()
		d, err := b.timedPull(ctx, ref)
		if err != nil {
			return err
		}
		cold = append(cold, d)
		n, err := b.blobGets(ctx, ref)
		if err != nil {
			return err
		}
		gets += sum(n)
	}
	for range b.o.pullIterations {
		d, err := b.timedPull(ctx, ref)
		if err != nil {
			return err
		}
		warm = append(warm, d)
	}
	return nil
}

// concurrentPull removes ref, then starts --concurrency pulls of it at
// once, --concurrent-rounds times, timing each round's wall time.
func (b *bench) concurrentPull(ctx context.Context, ref string) error {
	if err := b.listBlobs(ctx, ref); err != nil {
		return err
	}
	label := fmt.Sprintf("%d concurrent pulls %s", b.o.concurrency, shortRef(ref))
	var walls, each []time.Duration
	var perBlob []int
	defer func() {
		b.report.AddLatency(label+" (wall)", walls)
		b.report.AddLatency(label+" (each)", each)
		if len(perBlob) > 0 {
			b.report.AddValue(label+": blob GETs per blob, mean", "GETs", round2(float64(sum(perBlob))/float64(len(perBlob))))
			b.report.AddValue(label+": blob GETs per blob, max", "GETs", float64(maxOf(perBlob)))
		}
	}()
	for range b.o.rounds {
		if err := b.removeBenchImages(ctx); err != nil {
			return err
		}
		b.resetCounters()
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			errs  []error
			start = make(chan struct{})
		)
		for range b.o.concurrency {
			wg.Go(func() {
				<-start
				d, err := b.timedPull(ctx, ref)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				each = append(each, d)
			})
		}
		t0 := time.Now()
		close(start)
		wg.Wait()
		if len(errs) > 0 {
			return fmt.Errorf("%d of %d concurrent pulls failed, first: %w", len(errs), b.o.concurrency, errs[0])
		}
		walls = append(walls, time.Since(t0))
		n, err := b.blobGets(ctx, ref)
		if err != nil {
			return err
		}
		perBlob = append(perBlob, n...)
	}
	return nil
}

// benchImages are every image the pull scenario pulls.
func (b *bench) benchImages() []string {
	refs := splitList(b.o.pullImages)
	if !slices.Contains(refs, b.o.concurrentImage) {
		refs = append(refs, b.o.concurrentImage)
	}
	return refs
}

// removeBenchImages makes the next pull cold. Removing only the image
// about to be pulled is not enough: :gzip and :zstd share their
// uncompressed layers, and a runtime that still has them unpacked for the
// other tag rightly fetches nothing.
func (b *bench) removeBenchImages(ctx context.Context) error {
	for _, ref := range b.benchImages() {
		if err := b.removeImage(ctx, ref); err != nil {
			return err
		}
	}
	return nil
}

// presentBefore tells whether ref is present; if not, cleanup removes it.
func (b *bench) presentBefore(ctx context.Context, ref string) (bool, error) {
	cctx, cancel := b.rpc(ctx)
	defer cancel()
	resp, err := b.img.ImageStatus(cctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		return false, fmt.Errorf("ImageStatus %s: %w", ref, err)
	}
	present := resp.GetImage() != nil
	if !present {
		b.pulled[ref] = true
	}
	return present, nil
}

// ensureImage pulls ref unless present (untimed).
func (b *bench) ensureImage(ctx context.Context, ref string) error {
	present, err := b.presentBefore(ctx, ref)
	if err != nil || present {
		return err
	}
	_, err = b.timedPull(ctx, ref)
	return err
}

func (b *bench) timedPull(ctx context.Context, ref string) (time.Duration, error) {
	cctx, cancel := b.rpc(ctx)
	defer cancel()
	t0 := time.Now()
	_, err := b.img.PullImage(cctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil {
		return 0, fmt.Errorf("PullImage %s: %w", ref, err)
	}
	return time.Since(t0), nil
}

// removeImage removes ref; already gone is success.
func (b *bench) removeImage(ctx context.Context, ref string) error {
	cctx, cancel := b.rpc(ctx)
	defer cancel()
	_, err := b.img.RemoveImage(cctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
	if err != nil && !isNotFound(err) {
		return fmt.Errorf("RemoveImage %s: %w", ref, err)
	}
	return nil
}

// listBlobs reads ref's blob list from the registry before any timing:
// reading it may GET the config blob (to match the platform), which must
// not count as the runtime's.
func (b *bench) listBlobs(ctx context.Context, ref string) error {
	if b.reg == nil || b.blobs == nil {
		return nil
	}
	_, err := b.blobs.blobs(ctx, ref)
	return err
}

func (b *bench) resetCounters() {
	if b.reg != nil {
		b.reg.ResetCounters()
	}
}

// blobGets returns, per blob of ref (config and layers), the GETs the
// in-process registry counted since the last reset; nil without one.
func (b *bench) blobGets(ctx context.Context, ref string) ([]int, error) {
	if b.reg == nil || b.blobs == nil {
		return nil, nil
	}
	digests, err := b.blobs.blobs(ctx, ref)
	if err != nil {
		return nil, err
	}
	out := make([]int, len(digests))
	for i, d := range digests {
		out[i] = b.reg.BlobGets(d)
	}
	return out, nil
}

// shortRef drops the benchmark images' common prefix for table rows.
func shortRef(ref string) string {
	return strings.TrimPrefix(ref, "docker.io/nodeagent-bench/")
}

func sum(v []int) int {
	t := 0
	for _, x := range v {
		t += x
	}
	return t
}

func maxOf(v []int) int {
	m := 0
	for _, x := range v {
		m = max(m, x)
	}
	return m
}
