package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/nodeagent/nodeagent/internal/debugapi"
)

// finding is one thing on the node that no record of the daemon owns.
type finding struct {
	Kind   string `json:"kind"`   // mount, pin, veth, ipam, runtime, shim, shimdir, cgroup
	Item   string `json:"item"`   // path, interface, process
	Detail string `json:"detail"` // why it is judged so
	// Ours: provably the daemon's (its directories, ids, network names).
	// Only such findings count as leaks and are fixed; the others may
	// belong to another runtime sharing the node.
	Ours  bool   `json:"ours"`
	Fixed string `json:"fixed,omitempty"` // "yes", or why not
	fix   func() error
}

func doctorCommand(g *globals) *cobra.Command {
	var fix bool
	cmd := &cobra.Command{
		Use:   "doctor [--fix]",
		Short: "Audit the node for leaks no record owns; --fix removes those that are provably ours",
		Long: `doctor asks nodeagent what its records own, then looks at the node: mounts under
its root and state dirs, namespace pins, veths on its CNI bridges, host-local IPAM
reservations, runc state, shims and container cgroups. Anything of ours that no
record owns is a leak: doctor exits 1 when it finds one, unless --fix removed them
all. Items that may belong to another runtime are shown but never touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.context()
			defer cancel()
			dc, closeConn, err := g.debug()
			if err != nil {
				return err
			}
			defer closeConn()
			owned, err := dc.Owned(ctx)
			if isUnimplemented(err) {
				return errors.New("doctor needs nodeagent's debug service: this runtime does not have it")
			}
			if err != nil {
				return err
			}
			if os.Geteuid() != 0 {
				return errors.New("doctor reads and fixes node state: run it as root")
			}
			fs := audit(owned)
			leaks, failed := 0, 0
			for i := range fs {
				if !fs[i].Ours {
					continue
				}
				leaks++
				if fix && fs[i].fix != nil {
					if err := fs[i].fix(); err != nil {
						fs[i].Fixed, failed = "failed: "+oneLine(err), failed+1
					} else {
						fs[i].Fixed = "yes"
					}
				}
			}
			if g.output != "table" {
				if err := printValue(cmd.OutOrStdout(), g.output, fs); err != nil {
					return err
				}
			} else {
				printFindings(cmd.OutOrStdout(), fs, fix)
			}
			switch {
			case fix && failed > 0:
				return fmt.Errorf("%d of %d leak(s) could not be fixed", failed, leaks)
			case !fix && leaks > 0:
				return fmt.Errorf("%d leak(s) found; run with --fix to remove them", leaks)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&fix, "fix", false, "remove the leaks that are provably nodeagent's")
	return cmd
}

// audit runs every check. Each check is independent: one that cannot read
// its part of the node reports that as a finding instead of failing all.
func audit(o *debugapi.OwnedResponse) []finding {
	idx := newOwnership(o)
	var fs []finding
	for _, check := range []func(*ownership) []finding{
		checkMounts, checkPins, checkVeths, checkIPAM, checkRuntimeState, checkShims, checkCgroups,
	} {
		fs = append(fs, check(idx)...)
	}
	return fs
}

func printFindings(w io.Writer, fs []finding, fix bool) {
	if len(fs) == 0 {
		fmt.Fprintln(w, "No leaks found.")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "KIND\tITEM\tOURS\tDETAIL"
	if fix {
		header += "\tFIXED"
	}
	fmt.Fprintln(tw, header)
	for _, f := range fs {
		line := fmt.Sprintf("%s\t%s\t%t\t%s", f.Kind, f.Item, f.Ours, f.Detail)
		if fix {
			line += "\t" + f.Fixed
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}
