package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
)

func debugCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "debug", Short: "Inspect the daemon itself"}
	cmd.AddCommand(&cobra.Command{
		Use:   "goroutines",
		Short: "Dump the daemon's goroutines (as pprof's goroutine?debug=2)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.context()
			defer cancel()
			dc, closeConn, err := g.debug()
			if err != nil {
				return err
			}
			defer closeConn()
			resp, err := dc.Goroutines(ctx)
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), resp.Dump)
			return err
		},
	})
	cmd.AddCommand(pprofCommand(g))
	return cmd
}

func pprofCommand(g *globals) *cobra.Command {
	var seconds int
	var out string
	c := &cobra.Command{
		Use:   "pprof KIND",
		Short: "Write a pprof profile of the daemon (cpu, heap, allocs, mutex, block) for go tool pprof",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(context.Background(), g.timeout+time.Duration(seconds)*time.Second)
			defer cancel()
			dc, closeConn, err := g.debug()
			if err != nil {
				return err
			}
			defer closeConn()
			resp, err := dc.Profile(ctx, args[0], seconds)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, resp.Data, 0o644); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d bytes): go tool pprof %s\n", out, len(resp.Data), out)
			return err
		},
	}
	c.Flags().IntVar(&seconds, "seconds", 10, "CPU profile duration")
	c.Flags().StringVarP(&out, "file", "f", "nodeagent.pprof", "output file")
	return c
}
