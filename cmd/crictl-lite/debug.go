package main

import (
	"fmt"

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
	return cmd
}
