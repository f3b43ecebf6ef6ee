package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/debugapi"
)

// progressInterval is how often pull progress is polled and redrawn.
const progressInterval = 200 * time.Millisecond

func pullCommand(g *globals) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "pull IMAGE",
		Short: "Pull an image, showing per-layer progress",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// A pull takes as long as it takes: --timeout bounds connecting,
			// --pull-timeout (0: none) the pull; Ctrl-C cancels it.
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, timeout)
				defer cancel()
			}
			is, err := g.images(ctx)
			if err != nil {
				return err
			}
			done := make(chan struct{})
			watched := make(chan struct{})
			go func() {
				defer close(watched)
				g.watchPull(ctx, cmd.ErrOrStderr(), args[0], done)
			}()
			ref, err := is.PullImage(ctx, &runtimeapi.ImageSpec{Image: args[0]}, nil, nil)
			close(done)
			<-watched
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Image is up to date for %s\n", ref)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "pull-timeout", 0, "give up the pull after this long (0: never)")
	return cmd
}

// watchPull draws the daemon's per-layer progress of the pull of arg until
// done, on a terminal only; against a runtime without the debug service it
// draws a spinner instead.
func (g *globals) watchPull(ctx context.Context, w io.Writer, arg string, done <-chan struct{}) {
	f, ok := w.(*os.File)
	if !ok || !isTerminal(f) {
		<-done
		return
	}
	dc, closeConn, err := g.debug()
	if err != nil {
		<-done
		return
	}
	defer closeConn()
	tick := time.NewTicker(progressInterval)
	defer tick.Stop()
	rates := map[string]sample{}
	drawn, spin := 0, 0
	for {
		var lines []string
		cctx, cancel := context.WithTimeout(ctx, g.timeout)
		resp, err := dc.PullProgress(cctx)
		cancel()
		if err == nil {
			lines = renderPull(resp.Pulls, arg, rates, time.Now())
		} else {
			spin++
			lines = []string{fmt.Sprintf("Pulling %s %c", arg, `|/-\`[spin%4])}
		}
		redraw(w, drawn, lines)
		drawn = len(lines)
		select {
		case <-done:
			return
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// redraw replaces the previous frame of n lines with lines.
func redraw(w io.Writer, n int, lines []string) {
	var b strings.Builder
	if n > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", n)
	}
	for _, l := range lines {
		b.WriteString("\x1b[2K" + l + "\n")
	}
	for range max(0, n-len(lines)) {
		b.WriteString("\x1b[2K\n")
	}
	io.WriteString(w, b.String())
}

// sample is the last seen byte count of a layer, for its rate.
type sample struct {
	done int64
	at   time.Time
	rate float64 // bytes per second, smoothed
}

// renderPull renders the pulls of arg (all pulls when ""), one line per layer: digest, state,
// bar, bytes and rate.
func renderPull(pulls []debugapi.Pull, arg string, rates map[string]sample, now time.Time) []string {
	var lines []string
	for _, p := range pulls {
		if arg != "" && !sameRef(p.Ref, arg) {
			continue
		}
		lines = append(lines, fmt.Sprintf("%s  (%s)", p.Ref, now.Sub(p.Started).Round(100*time.Millisecond)))
		for _, l := range p.Layers {
			s, seen := rates[l.Digest]
			if seen && now.After(s.at) {
				inst := float64(l.Done-s.done) / now.Sub(s.at).Seconds()
				s.rate = 0.7*s.rate + 0.3*inst
			}
			s.done, s.at = l.Done, now
			rates[l.Digest] = s
			lines = append(lines, layerLine(l, s.rate))
		}
	}
	return lines
}

func layerLine(l debugapi.Layer, rate float64) string {
	const width = 24
	filled := 0
	if l.Total > 0 {
		filled = int(min(l.Done, l.Total) * width / l.Total)
	}
	if l.State == "done" || l.State == "exists" {
		filled = width
	}
	bar := strings.Repeat("=", filled) + strings.Repeat(" ", width-filled)
	line := fmt.Sprintf("  %s  %-11s [%s] %9s / %-9s", shortID(l.Digest), l.State, bar, humanBytes(l.Done), humanBytes(l.Total))
	if l.State == "downloading" && rate > 0 {
		line += fmt.Sprintf(" %s/s", humanBytes(int64(rate)))
	}
	return line
}

// sameRef compares references the way users write them: "busybox" is
// "docker.io/library/busybox:latest".
func sameRef(a, b string) bool { return normalizeRef(a) == normalizeRef(b) }

func normalizeRef(r string) string {
	r = strings.TrimPrefix(r, "docker.io/")
	r = strings.TrimPrefix(r, "library/")
	if !strings.Contains(r, "@") {
		if _, tag := splitTag(r); tag == "<none>" {
			r += ":latest"
		}
	}
	return r
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func rmiCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "rmi IMAGE...",
		Short: "Remove images by reference, id or unique id prefix",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.context()
			defer cancel()
			is, err := g.images(ctx)
			if err != nil {
				return err
			}
			for _, a := range args {
				im, err := resolveImage(ctx, is, a)
				if err != nil {
					return err
				}
				if err := is.RemoveImage(ctx, &runtimeapi.ImageSpec{Image: im.Id}); err != nil {
					return fmt.Errorf("remove %s: %w", a, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Deleted: %s\n", strings.Join(append(im.RepoTags, im.Id), " "))
			}
			return nil
		},
	}
}
