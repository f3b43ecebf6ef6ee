package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

// exitError makes crictl-lite exit with a command's own exit code, silently:
// `crictl-lite exec c false` exits 1 as `false` did.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func execCommand(g *globals) *cobra.Command {
	var interactive, tty bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "exec [-it] CONTAINER COMMAND [ARG...]",
		Short: "Run a command in a container; exits with the command's exit code",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cctx, cancel := context.WithTimeout(ctx, g.timeout)
			defer cancel()
			rt, err := g.runtime(cctx)
			if err != nil {
				return err
			}
			c, err := resolveContainer(cctx, rt, args[0])
			if err != nil {
				return err
			}
			if interactive || tty {
				return execStream(ctx, rt, c.Id, args[1:], interactive, tty)
			}
			stdout, stderr, err := rt.ExecSync(ctx, c.Id, args[1:], timeout)
			cmd.OutOrStdout().Write(stdout)
			cmd.ErrOrStderr().Write(stderr)
			var coded interface{ ExitStatus() int }
			if errors.As(err, &coded) {
				return exitError{code: coded.ExitStatus()}
			}
			return err
		},
	}
	cmd.Flags().SetInterspersed(false) // flags after CONTAINER belong to COMMAND
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "keep stdin open (streams through the runtime's exec URL)")
	cmd.Flags().BoolVarP(&tty, "tty", "t", false, "allocate a terminal")
	cmd.Flags().DurationVar(&timeout, "exec-timeout", 0, "kill the command after this long (0: never; non-interactive only)")
	return cmd
}
