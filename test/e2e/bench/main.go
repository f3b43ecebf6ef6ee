// Command bench measures a CRI runtime through its gRPC socket: pod and
// container lifecycle latencies, ExecSync, image pulls, List/Status with
// hundreds of objects present, and the memory of the daemon and its shims.
// It speaks CRI only, so the same run measures nodeagent, containerd or
// CRI-O, and hack/bench-compare.sh puts two of them side by side.
//
//	go run ./test/e2e/bench --endpoint unix:///run/nodeagent/nodeagent.sock \
//	    --daemon-pid $(pidof nodeagent) --json out.json
//	go run ./test/e2e/bench compare --names a,b a.json b.json
//
// Every pod gets a unique name, uid and cgroup parent; whatever the run
// created is removed at the end, also after Ctrl-C.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// options are the command-line flags.
type options struct {
	endpoint, imageEndpoint string
	name                    string
	jsonOut                 string
	scenarios               string

	iterations, warmup    int
	listPods, listPerPod  int
	listStart             bool
	listIterations        int
	pullIterations        int
	pullImages            string
	concurrentImage       string
	concurrency, rounds   int
	busybox, sandboxImage string
	daemonPID             int
	shimMarker            string
	registryURL           string
	registryListen        string
	registryCache         string
	rpcTimeout            time.Duration
	removeTimeout         time.Duration
	keepImages            bool
	runID                 string
	readyTimeout          time.Duration
}

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&o.endpoint, "endpoint", "", "CRI runtime endpoint, unix:///path/to.sock (required)")
	fs.StringVar(&o.imageEndpoint, "image-endpoint", "", "CRI image endpoint (default: --endpoint)")
	fs.StringVar(&o.name, "name", "", "runtime label in the report (default: the runtime's name from Version)")
	fs.StringVar(&o.jsonOut, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&o.scenarios, "scenarios", "pods,container,exec,list,pull", "comma-separated scenarios to run")
	fs.IntVar(&o.iterations, "iterations", 50, "pods (and containers, execs) per lifecycle scenario")
	fs.IntVar(&o.warmup, "warmup", 2, "untimed pod starts before the lifecycle scenarios")
	fs.IntVar(&o.listPods, "list-pods", 50, "pods in the List/Status fixture")
	fs.IntVar(&o.listPerPod, "list-containers-per-pod", 10, "containers per pod in the List/Status fixture")
	fs.BoolVar(&o.listStart, "list-start", false, "start the fixture's containers (default: created only)")
	fs.IntVar(&o.listIterations, "list-iterations", 200, "calls of each List/Status RPC")
	fs.IntVar(&o.pullIterations, "pull-iterations", 5, "cold and warm pulls of each --pull-images image")
	fs.StringVar(&o.pullImages, "pull-images", strings.Join(defaultPullImages, ","), "comma-separated images for cold/warm pulls; these and --concurrent-image are removed before every cold pull")
	fs.StringVar(&o.concurrentImage, "concurrent-image", "docker.io/nodeagent-bench/layers20:gzip", "image pulled concurrently")
	fs.IntVar(&o.concurrency, "concurrency", 10, "simultaneous pulls of --concurrent-image")
	fs.IntVar(&o.rounds, "concurrent-rounds", 3, "rounds of concurrent pulls (image removed before each)")
	fs.StringVar(&o.busybox, "busybox-image", "registry.k8s.io/e2e-test-images/busybox:1.29-2", "image of the `sleep 3600` containers")
	fs.StringVar(&o.sandboxImage, "sandbox-image", "registry.k8s.io/pause:3.10", "pulled before the run so that a runtime with a pause container does not pull it inside a timed RunPodSandbox (empty: skip)")
	fs.IntVar(&o.daemonPID, "daemon-pid", 0, "PID of the runtime daemon, for the memory figures (0: no memory figures)")
	fs.StringVar(&o.shimMarker, "shim-marker", "", "a string in every shim's command line (default: shims are the daemon's child processes)")
	fs.StringVar(&o.registryURL, "registry-url", "", "URL of the registry the runtime's mirrors point at, recorded in the report (blob GET counts need --registry-listen)")
	fs.StringVar(&o.registryListen, "registry-listen", "", "start the test registry in-process on this host:port (the runtime's mirrors must point there); enables blob GET counts")
	fs.StringVar(&o.registryCache, "registry-cache", "", "cache dir of the in-process test registry (default: its own default)")
	fs.DurationVar(&o.rpcTimeout, "rpc-timeout", 2*time.Minute, "deadline of one CRI call")
	fs.DurationVar(&o.removeTimeout, "cleanup-timeout", time.Minute, "deadline of each stop/remove call during cleanup")
	fs.BoolVar(&o.keepImages, "keep-images", false, "do not remove images the run pulled")
	fs.StringVar(&o.runID, "run-id", "", "lowercase [a-z0-9-] id in pod names and the cgroup parent /nodeagent-bench-ID (default: random), so a caller can clean up after a killed run")
	fs.DurationVar(&o.readyTimeout, "ready-timeout", 10*time.Second, "how long to wait for the runtime to answer CRI Version")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if o.endpoint == "" {
		return nil, errors.New("--endpoint is required")
	}
	if o.imageEndpoint == "" {
		o.imageEndpoint = o.endpoint
	}
	if o.iterations < 1 || o.listIterations < 1 || o.pullIterations < 1 || o.rounds < 1 || o.concurrency < 1 {
		return nil, errors.New("iteration counts must be at least 1")
	}
	if o.registryURL != "" && o.registryListen != "" {
		return nil, errors.New("--registry-url and --registry-listen are exclusive")
	}
	if !validRunID.MatchString(o.runID) {
		return nil, fmt.Errorf("--run-id %q: want up to 20 of [a-z0-9-]", o.runID)
	}
	for _, s := range splitList(o.scenarios) {
		if !knownScenarios[s] {
			return nil, fmt.Errorf("unknown scenario %q", s)
		}
	}
	return o, nil
}

// validRunID keeps pod names valid DNS labels and hostnames.
var validRunID = regexp.MustCompile(`^[a-z0-9-]{0,20}$`)

var knownScenarios = map[string]bool{"pods": true, "container": true, "exec": true, "list": true, "pull": true}

// defaultPullImages are the test registry's multi-layer pull-only images.
var defaultPullImages = []string{
	"docker.io/nodeagent-bench/layers5:gzip",
	"docker.io/nodeagent-bench/layers5:zstd",
	"docker.io/nodeagent-bench/layers20:gzip",
	"docker.io/nodeagent-bench/layers20:zstd",
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "compare" {
		err = compareMain(os.Args[2:])
	} else {
		err = benchMain(os.Args[1:])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func benchMain(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	// SIGINT/SIGTERM cancel the scenarios; cleanup still runs, under its
	// own deadlines, and further signals do not cut it short: a terminal's
	// Ctrl-C reaches this process and then hack/bench-compare.sh's SIGTERM
	// follows. SIGKILL or SIGQUIT abort for real.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A reader of our output (tee) may be gone after a Ctrl-C; a write to
	// the broken pipe must fail, not kill the process before cleanup.
	signal.Ignore(syscall.SIGPIPE)
	go func() {
		<-ctx.Done()
		log.Printf("bench: interrupted; removing what the run created")
	}()

	b, err := newBench(ctx, o)
	if err != nil {
		return err
	}
	runErr := b.run(ctx)
	cleanErr := b.cleanup()
	b.report.Finish()
	b.report.PrintTable(os.Stdout)
	if o.jsonOut != "" {
		if err := b.report.WriteJSON(o.jsonOut); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return errors.Join(errors.New("interrupted"), cleanErr)
	}
	return errors.Join(runErr, cleanErr)
}
