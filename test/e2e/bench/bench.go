package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	testregistry "github.com/nodeagent/nodeagent/test/e2e/registry"
)

// bench holds one run against one runtime.
type bench struct {
	o      *options
	rt     runtimeapi.RuntimeServiceClient
	img    runtimeapi.ImageServiceClient
	conns  []*grpc.ClientConn
	runID  string
	logDir string // pods' log directories live under it
	pods   *podTracker
	reg    *testregistry.Registry // nil unless --registry-listen
	blobs  *blobLister            // nil unless --registry-listen
	report *Report
	// pulled are images this run pulled that were absent before: cleanup
	// removes them so that the runtime is left as it was found.
	pulled map[string]bool
	nextID int
}

// newBench connects to the runtime and, if asked, starts the registry.
// Nothing is created on the runtime yet.
func newBench(ctx context.Context, o *options) (*bench, error) {
	b := &bench{o: o, runID: o.runID, pods: newPodTracker(), pulled: map[string]bool{}}
	if b.runID == "" {
		b.runID = randomHex(6)
	}
	rtConn, err := dial(o.endpoint)
	if err != nil {
		return nil, err
	}
	b.conns = append(b.conns, rtConn)
	imgConn := rtConn
	if o.imageEndpoint != o.endpoint {
		if imgConn, err = dial(o.imageEndpoint); err != nil {
			b.closeConns()
			return nil, err
		}
		b.conns = append(b.conns, imgConn)
	}
	b.rt = runtimeapi.NewRuntimeServiceClient(rtConn)
	b.img = runtimeapi.NewImageServiceClient(imgConn)

	v, err := b.waitReady(ctx)
	if err != nil {
		b.closeConns()
		return nil, fmt.Errorf("CRI Version on %s: %w", o.endpoint, err)
	}
	name := o.name
	if name == "" {
		name = v.GetRuntimeName()
	}
	b.report = newReport(name, v.GetRuntimeName()+" "+v.GetRuntimeVersion(), o)
	b.report.RunID = b.runID
	log.Printf("bench: run %s against %s (%s %s)", b.runID, o.endpoint, v.GetRuntimeName(), v.GetRuntimeVersion())

	if o.registryListen != "" {
		log.Printf("bench: starting the test registry on %s", o.registryListen)
		b.reg, err = testregistry.Start(ctx, testregistry.Options{Listen: o.registryListen, CacheDir: o.registryCache})
		if err != nil {
			b.closeConns()
			return nil, fmt.Errorf("test registry: %w", err)
		}
		b.blobs = newBlobLister(b.reg.URL())
	}
	if b.logDir, err = os.MkdirTemp("", "nodeagent-bench-"+b.runID+"-"); err != nil {
		b.closeConns()
		return nil, err
	}
	return b, nil
}

// waitReady calls Version until it answers or --ready-timeout passes: a
// daemon just started may not have bound its socket yet.
func (b *bench) waitReady(ctx context.Context) (*runtimeapi.VersionResponse, error) {
	deadline := time.Now().Add(b.o.readyTimeout)
	for {
		vctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := b.rt.Version(vctx, &runtimeapi.VersionRequest{})
		cancel()
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return v, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// run executes the selected scenarios in a fixed order. A failed scenario
// is recorded and the next one runs; an interrupt stops the run.
func (b *bench) run(ctx context.Context) error {
	if err := b.setup(ctx); err != nil {
		b.report.Fail("setup", err)
		return err
	}
	b.measureMemory("idle", 0)
	enabled := map[string]bool{}
	for _, s := range splitList(b.o.scenarios) {
		enabled[s] = true
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"pods", b.podLifecycle},
		{"container", b.containerStart},
		{"exec", b.execSync},
		{"list", b.listAndStatus},
		{"pull", b.pulls},
	}
	var errs []error
	for _, s := range steps {
		if !enabled[s.name] {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		log.Printf("bench: scenario %s", s.name)
		start := time.Now()
		if err := s.fn(ctx); err != nil {
			b.report.Fail(s.name, err)
			errs = append(errs, fmt.Errorf("%s: %w", s.name, err))
			log.Printf("bench: scenario %s failed: %v", s.name, err)
		}
		log.Printf("bench: scenario %s took %.1fs", s.name, time.Since(start).Seconds())
		// A failed scenario may leave pods behind; they would weigh on the
		// next one's figures (and its memory counts).
		b.removeLeftPods(ctx)
	}
	return errors.Join(errs...)
}

// setup pulls the container image and the sandbox image, untimed, so that
// no timed pod start includes a pull.
func (b *bench) setup(ctx context.Context) error {
	for _, ref := range []string{b.o.busybox, b.o.sandboxImage} {
		if ref == "" {
			continue
		}
		if err := b.ensureImage(ctx, ref); err != nil {
			return err
		}
	}
	return nil
}

// cleanup removes everything the run created, under fresh deadlines (the
// run's context may be cancelled by now): pods, the cgroup parent, the
// images it pulled, the log directory, the registry.
func (b *bench) cleanup() error {
	var errs []error
	if n := b.pods.len(); n > 0 {
		log.Printf("bench: cleanup: removing %d pod(s)", n)
	}
	for _, id := range b.pods.all() {
		if err := b.removePod(context.Background(), id, b.o.removeTimeout); err != nil {
			errs = append(errs, fmt.Errorf("cleanup of pod %s: %w", id, err))
		}
	}
	if err := removeCgroupParent(b.cgroupParent()); err != nil {
		errs = append(errs, err)
	}
	if !b.o.keepImages {
		for ref := range b.pulled {
			if err := b.removeImage(context.Background(), ref); err != nil {
				errs = append(errs, fmt.Errorf("cleanup of image %s: %w", ref, err))
			}
		}
	}
	if b.pods.len() == 0 {
		// Only now: a pod still there may hold open files under it.
		if err := os.RemoveAll(b.logDir); err != nil {
			errs = append(errs, err)
		}
	} else {
		errs = append(errs, fmt.Errorf("kept %s: %d pod(s) could not be removed", b.logDir, b.pods.len()))
	}
	if b.reg != nil {
		if err := b.reg.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing the test registry: %w", err))
		}
	}
	b.closeConns()
	for _, err := range errs {
		log.Printf("bench: cleanup: %v", err)
	}
	return errors.Join(errs...)
}

// removeLeftPods removes, untimed, the pods still tracked.
func (b *bench) removeLeftPods(ctx context.Context) {
	for _, id := range b.pods.all() {
		if err := b.removePod(ctx, id, b.o.removeTimeout); err != nil {
			log.Printf("bench: removing left pod %s: %v", id, err)
		}
	}
}

func (b *bench) closeConns() {
	for _, c := range b.conns {
		c.Close()
	}
	b.conns = nil
}

func randomHex(n int) string {
	buf := make([]byte, (n+1)/2)
	_, _ = rand.Read(buf) // never fails
	return hex.EncodeToString(buf)[:n]
}
