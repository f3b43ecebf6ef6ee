package main

import (
	"context"
	"fmt"
	"log"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// podLifecycle starts --iterations one-container pods one after the other
// (timing RunPodSandbox and the whole pod start), measures memory while
// they all run, then stops and removes them one after the other.
func (b *bench) podLifecycle(ctx context.Context) error {
	for i := range b.o.warmup {
		id, _, _, err := b.startPod(ctx, "warmup")
		if err != nil {
			return fmt.Errorf("warm-up pod %d: %w", i, err)
		}
		if err := b.removePod(ctx, id, b.o.rpcTimeout); err != nil {
			return fmt.Errorf("warm-up pod %d: %w", i, err)
		}
	}
	var ids []string
	var sandbox, total []time.Duration
	// Recorded even when an iteration fails: the figures so far are real.
	defer func() {
		b.report.AddLatency("RunPodSandbox", sandbox)
		b.report.AddLatency("pod start (run+create+start)", total)
	}()
	for i := range b.o.iterations {
		id, s, t, err := b.startPod(ctx, "pod")
		if err != nil {
			return err
		}
		ids = append(ids, id)
		sandbox, total = append(sandbox, s), append(total, t)
		logProgress("pods started", i, b.o.iterations)
	}
	b.measureMemory(fmt.Sprintf("%d pods", len(ids)), len(ids))

	var remove []time.Duration
	defer func() { b.report.AddLatency("pod stop+remove", remove) }()
	for i, id := range ids {
		t0 := time.Now()
		if err := b.removePod(ctx, id, b.o.rpcTimeout); err != nil {
			return err
		}
		remove = append(remove, time.Since(t0))
		logProgress("pods removed", i, len(ids))
	}
	return nil
}

// containerStart creates and starts --iterations containers in one pod,
// one after the other: the cost of a container apart from its sandbox.
func (b *bench) containerStart(ctx context.Context) error {
	cfg := b.podConfig("ctr")
	id, err := b.runPod(ctx, cfg)
	if err != nil {
		return err
	}
	var samples []time.Duration
	defer func() { b.report.AddLatency("container create+start", samples) }()
	for i := range b.o.iterations {
		t0 := time.Now()
		cid, err := b.createContainer(ctx, id, cfg, fmt.Sprintf("c%d", i))
		if err != nil {
			return err
		}
		if err := b.startContainer(ctx, cid); err != nil {
			return err
		}
		samples = append(samples, time.Since(t0))
	}
	return b.removePod(ctx, id, b.o.rpcTimeout)
}

// execSync runs `/bin/true` --iterations times in a running container.
func (b *bench) execSync(ctx context.Context) error {
	id, _, _, err := b.startPod(ctx, "exec")
	if err != nil {
		return err
	}
	cid, err := b.onlyContainer(ctx, id)
	if err != nil {
		return err
	}
	var samples []time.Duration
	defer func() { b.report.AddLatency("ExecSync /bin/true", samples) }()
	for range b.o.iterations {
		cctx, cancel := b.rpc(ctx)
		t0 := time.Now()
		resp, err := b.rt.ExecSync(cctx, &runtimeapi.ExecSyncRequest{ContainerId: cid, Cmd: []string{"/bin/true"}, Timeout: 10})
		d := time.Since(t0)
		cancel()
		if err != nil {
			return fmt.Errorf("ExecSync: %w", err)
		}
		if resp.GetExitCode() != 0 {
			return fmt.Errorf("ExecSync /bin/true exited %d: %s", resp.GetExitCode(), resp.GetStderr())
		}
		samples = append(samples, d)
	}
	return b.removePod(ctx, id, b.o.rpcTimeout)
}

// onlyContainer returns the id of the one container of pod podID.
func (b *bench) onlyContainer(ctx context.Context, podID string) (string, error) {
	cctx, cancel := b.rpc(ctx)
	defer cancel()
	resp, err := b.rt.ListContainers(cctx, &runtimeapi.ListContainersRequest{
		Filter: &runtimeapi.ContainerFilter{PodSandboxId: podID},
	})
	if err != nil {
		return "", fmt.Errorf("ListContainers: %w", err)
	}
	if n := len(resp.GetContainers()); n != 1 {
		return "", fmt.Errorf("pod %s has %d containers, want 1", podID, n)
	}
	return resp.GetContainers()[0].GetId(), nil
}

// logProgress prints a line every tenth of n, so that a slow run shows life.
func logProgress(what string, i, n int) {
	if step := max(n/10, 1); (i+1)%step == 0 || i+1 == n {
		log.Printf("bench:   %s %d/%d", what, i+1, n)
	}
}
