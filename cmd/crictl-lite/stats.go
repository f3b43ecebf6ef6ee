package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func statsCommand(g *globals) *cobra.Command {
	var once bool
	var interval time.Duration
	var podArg string
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Show containers' resource usage, refreshing like top (--once to print once)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cctx, cancel := context.WithTimeout(ctx, g.timeout)
			rt, err := g.runtime(cctx)
			cancel()
			if err != nil {
				return err
			}
			filter := &runtimeapi.ContainerStatsFilter{}
			if podArg != "" {
				cctx, cancel := context.WithTimeout(ctx, g.timeout)
				p, err := resolvePod(cctx, rt, podArg)
				cancel()
				if err != nil {
					return err
				}
				filter.PodSandboxId = p.Id
			}
			w := cmd.OutOrStdout()
			f, isFile := w.(*os.File)
			refresh := !once && g.output == "table" && isFile && isTerminal(f)
			prev := map[string]*runtimeapi.ContainerStats{}
			for {
				cctx, cancel := context.WithTimeout(ctx, g.timeout)
				stats, err := rt.ListContainerStats(cctx, filter)
				cancel()
				if err != nil {
					return err
				}
				if g.output != "table" {
					return printStructured(w, g.output, &runtimeapi.ListContainerStatsResponse{Stats: stats})
				}
				if refresh {
					fmt.Fprint(w, "\x1b[H\x1b[2J")
				}
				if err := printStats(w, stats, prev); err != nil {
					return err
				}
				if !refresh {
					return nil
				}
				for _, s := range stats {
					prev[s.GetAttributes().GetId()] = s
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(interval):
				}
			}
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "print once and exit (the default when not on a terminal)")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "refresh interval")
	cmd.Flags().StringVarP(&podArg, "pod", "p", "", "only containers of this pod")
	return cmd
}

// printStats prints one frame, busiest CPU first. CPU is the runtime's
// usage_nano_cores, or computed from the previous frame when absent.
func printStats(w io.Writer, stats []*runtimeapi.ContainerStats, prev map[string]*runtimeapi.ContainerStats) error {
	type row struct {
		id, name string
		cpu      float64 // percent of one core
		mem, fs  uint64
	}
	rows := make([]row, 0, len(stats))
	for _, s := range stats {
		r := row{id: s.GetAttributes().GetId(), name: s.GetAttributes().GetMetadata().GetName(),
			mem: s.GetMemory().GetWorkingSetBytes().GetValue(), fs: s.GetWritableLayer().GetUsedBytes().GetValue()}
		r.cpu = cpuPercent(s.GetCpu(), prev[r.id].GetCpu())
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b row) int { return cmp.Or(cmp.Compare(b.cpu, a.cpu), cmp.Compare(a.name, b.name)) })
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER\tNAME\tCPU %\tMEM\tDISK")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%s\n", shortID(r.id), r.name, r.cpu, humanBytes(int64(r.mem)), humanBytes(int64(r.fs)))
	}
	return tw.Flush()
}

func cpuPercent(cur, prev *runtimeapi.CpuUsage) float64 {
	if n := cur.GetUsageNanoCores(); n != nil {
		return float64(n.GetValue()) / 1e7
	}
	if prev == nil || cur.GetTimestamp() <= prev.GetTimestamp() {
		return 0
	}
	used := float64(cur.GetUsageCoreNanoSeconds().GetValue()) - float64(prev.GetUsageCoreNanoSeconds().GetValue())
	return used / float64(cur.GetTimestamp()-prev.GetTimestamp()) * 100
}
