package main

import (
	"context"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// listAndStatus builds a fixture of --list-pods pods with
// --list-containers-per-pod containers each (created; started only with
// --list-start, which a 2-core machine pays for dearly), then times the
// calls kubelet's relist makes every second: ListPodSandbox and
// ListContainers without a filter, and the Status of one object.
func (b *bench) listAndStatus(ctx context.Context) error {
	type pod struct {
		id         string
		containers []string
	}
	var pods []pod
	defer func() {
		// Untimed, and before the next scenario: their objects would
		// weigh on it.
		for _, p := range pods {
			_ = b.removePod(ctx, p.id, b.o.rpcTimeout)
		}
	}()
	t0 := time.Now()
	for i := range b.o.listPods {
		cfg := b.podConfig("list")
		id, err := b.runPod(ctx, cfg)
		if err != nil {
			return err
		}
		p := pod{id: id}
		for j := range b.o.listPerPod {
			cid, err := b.createContainer(ctx, id, cfg, fmt.Sprintf("c%d", j))
			if err != nil {
				return err
			}
			if b.o.listStart {
				if err := b.startContainer(ctx, cid); err != nil {
					return err
				}
			}
			p.containers = append(p.containers, cid)
		}
		pods = append(pods, p)
		logProgress("list fixture pods", i, b.o.listPods)
	}
	nContainers := b.o.listPods * b.o.listPerPod
	b.report.AddValue(fmt.Sprintf("list fixture build (%d pods, %d containers)", len(pods), nContainers), "s", round2(time.Since(t0).Seconds()))
	b.measureMemory(fmt.Sprintf("%d pods+%d containers", len(pods), nContainers), len(pods))

	suffix := fmt.Sprintf(" (%d pods, %d containers)", len(pods), nContainers)
	var listPods, listCtrs, podStatus, ctrStatus []time.Duration
	defer func() {
		b.report.AddLatency("ListPodSandbox"+suffix, listPods)
		b.report.AddLatency("ListContainers"+suffix, listCtrs)
		b.report.AddLatency("PodSandboxStatus"+suffix, podStatus)
		b.report.AddLatency("ContainerStatus"+suffix, ctrStatus)
	}()
	for i := range b.o.listIterations {
		p := pods[i%len(pods)]
		var n int
		d, err := b.timeRPC(ctx, func(c context.Context) error {
			resp, err := b.rt.ListPodSandbox(c, &runtimeapi.ListPodSandboxRequest{})
			n = len(resp.GetItems())
			return err
		})
		if err != nil {
			return fmt.Errorf("ListPodSandbox: %w", err)
		}
		if n < len(pods) {
			return fmt.Errorf("ListPodSandbox returned %d pods, want at least %d", n, len(pods))
		}
		listPods = append(listPods, d)

		d, err = b.timeRPC(ctx, func(c context.Context) error {
			resp, err := b.rt.ListContainers(c, &runtimeapi.ListContainersRequest{})
			n = len(resp.GetContainers())
			return err
		})
		if err != nil {
			return fmt.Errorf("ListContainers: %w", err)
		}
		if n < nContainers {
			return fmt.Errorf("ListContainers returned %d containers, want at least %d", n, nContainers)
		}
		listCtrs = append(listCtrs, d)

		d, err = b.timeRPC(ctx, func(c context.Context) error {
			_, err := b.rt.PodSandboxStatus(c, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: p.id})
			return err
		})
		if err != nil {
			return fmt.Errorf("PodSandboxStatus: %w", err)
		}
		podStatus = append(podStatus, d)

		if len(p.containers) == 0 {
			continue
		}
		cid := p.containers[(i/len(pods))%len(p.containers)]
		d, err = b.timeRPC(ctx, func(c context.Context) error {
			_, err := b.rt.ContainerStatus(c, &runtimeapi.ContainerStatusRequest{ContainerId: cid})
			return err
		})
		if err != nil {
			return fmt.Errorf("ContainerStatus: %w", err)
		}
		ctrStatus = append(ctrStatus, d)
	}
	return nil
}

// timeRPC times one call under the run's RPC deadline.
func (b *bench) timeRPC(ctx context.Context, call func(context.Context) error) (time.Duration, error) {
	cctx, cancel := b.rpc(ctx)
	defer cancel()
	t0 := time.Now()
	err := call(cctx)
	return time.Since(t0), err
}

func round2(v float64) float64 { return float64(int64(v*100+0.5)) / 100 }
