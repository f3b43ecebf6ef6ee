package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/cni"
	"github.com/nodeagent/nodeagent/imagesvc"
	"github.com/nodeagent/nodeagent/internal/config"
	"github.com/nodeagent/nodeagent/internal/metrics"
	"github.com/nodeagent/nodeagent/internal/store"
	"github.com/nodeagent/nodeagent/internal/version"
	"github.com/nodeagent/nodeagent/oci"
	"github.com/nodeagent/nodeagent/oci/spec"
	"github.com/nodeagent/nodeagent/sandbox"
	"github.com/nodeagent/nodeagent/server"
)

// drainTimeout bounds how long SIGTERM waits for in-flight RPCs.
const drainTimeout = 10 * time.Second

// runDaemon starts the daemon and serves until SIGTERM or SIGINT. Everything
// that recovery needs runs before the socket is bound, so a client that finds
// the socket can use it.
func runDaemon(cfg *config.Config) error {
	klog.InfoS("Starting nodeagent", "version", version.Version, "socket", cfg.Socket, "root", cfg.Root, "state", cfg.State)
	for _, dir := range []string{cfg.Root, cfg.State, filepath.Dir(cfg.Socket)} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
	}
	unlock, err := lockInstance(cfg)
	if err != nil {
		return err
	}
	defer unlock()

	db, err := store.Open(filepath.Join(cfg.Root, "meta.db"))
	if err != nil {
		return err
	}
	defer db.Close()

	network, err := cni.NewManager(cfg.CNI.ConfDir, cfg.CNI.BinDirs, filepath.Join(cfg.Root, "cni"), cni.WithTimeout(cfg.CNI.Timeout.Std()))
	if err != nil {
		return err
	}
	defer network.Close()

	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	sandboxes, err := sandbox.NewManager(context.Background(), db, network, cfg.State, self)
	if err != nil {
		return fmt.Errorf("recover sandboxes: %w", err)
	}

	mx := metrics.New()
	sandboxes.Observe = mx.ObservePhase
	images, err := imagesvc.New(imageConfig(cfg), db)
	if err != nil {
		return fmt.Errorf("load images: %w", err)
	}

	handlers := probeHandlers(cfg.Runtime, filepath.Join(cfg.State, "probe"), self)
	driver := cgroupDriver(cfg.CgroupDriver)
	host, err := spec.DetectHostFacts()
	if err != nil {
		return fmt.Errorf("detect host: %w", err)
	}
	containers, err := oci.NewManager(context.Background(), oci.Options{
		DB: db, Rootfs: images, Root: cfg.Root, State: cfg.State,
		Handlers: handlers, CgroupDriver: driver, Host: host, Binary: self, Observe: mx.ObservePhase,
		StatsInterval: cfg.Stats.Interval.Std(), WritableLayerInterval: cfg.Stats.WritableLayerInterval.Std(),
	})
	if err != nil {
		return fmt.Errorf("recover containers: %w", err)
	}
	sandboxes.Infra = containers

	srv, err := server.New(server.Options{
		Containers:   containers,
		Images:       images,
		Metrics:      mx,
		Network:      network,
		Sandboxes:    sandboxes,
		Handlers:     handlers,
		DB:           db,
		CgroupDriver: driver,
		Info:         map[string]string{"config": configJSON(cfg)},
	})
	if err != nil {
		return err
	}
	if cfg.Metrics.Address != "" {
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		addr, err := mx.Serve(ctx, cfg.Metrics.Address)
		if err != nil {
			return fmt.Errorf("metrics: listen on %s: %w", cfg.Metrics.Address, err)
		}
		registerGauges(mx, sandboxes, containers)
		klog.InfoS("Serving metrics", "address", "http://"+addr+"/metrics")
	}
	stopStreaming, err := srv.StartStreaming(server.StreamingOptions{
		Address: cfg.Streaming.Address, Port: cfg.Streaming.Port, IdleTimeout: cfg.Streaming.IdleTimeout.Std(),
		URLTTL: cfg.Streaming.URLTTL.Std(), TLSCertFile: cfg.Streaming.TLSCertFile, TLSKeyFile: cfg.Streaming.TLSKeyFile,
	})
	if err != nil {
		return err
	}
	defer stopStreaming()
	debug := srv.NewDebug(server.DebugOptions{
		Root: cfg.Root, State: cfg.State, CNICacheDir: filepath.Join(cfg.Root, "cni"), CgroupDriver: driver,
	})
	g := grpc.NewServer(
		// RecordCalls first: it files the status code the client sees.
		grpc.ChainUnaryInterceptor(debug.RecordCalls, server.UnaryInterceptor, mx.UnaryInterceptor),
		grpc.ChainStreamInterceptor(server.StreamInterceptor),
	)
	srv.Register(g)
	debug.Register(g)

	lis, err := listen(cfg.Socket)
	if err != nil {
		return err
	}
	return serve(g, lis)
}

// serve runs g until a termination signal, then drains in-flight RPCs for a
// bounded time. It never touches containers: they outlive the daemon.
func serve(g *grpc.Server, lis net.Listener) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	errc := make(chan error, 1)
	go func() { errc <- g.Serve(lis) }()
	klog.InfoS("Serving CRI", "socket", lis.Addr().String())
	sdNotify("READY=1")

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case sig := <-sigs:
		klog.InfoS("Shutting down", "signal", sig.String())
	}
	sdNotify("STOPPING=1")
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
		klog.InfoS("In-flight RPCs did not finish in time; closing them", "timeout", drainTimeout)
		g.Stop()
	}
	return nil
}

// lockInstance takes exclusive locks beside the socket and in the state
// directory, so a second daemon on either exits with a clear error instead of
// stealing the socket. The locks die with the process.
func lockInstance(cfg *config.Config) (func(), error) {
	var files []*os.File
	unlock := func() {
		for _, f := range files {
			f.Close()
		}
	}
	for _, p := range []string{cfg.Socket + ".lock", filepath.Join(cfg.State, "nodeagent.lock")} {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			unlock()
			return nil, fmt.Errorf("open lock file: %w", err)
		}
		files = append(files, f)
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			unlock()
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("another nodeagent is running (lock %s is held)", p)
			}
			return nil, fmt.Errorf("lock %s: %w", p, err)
		}
	}
	return unlock, nil
}

// listen binds the socket with mode 0660. Holding the instance lock, any
// existing socket file is stale and is replaced.
func listen(path string) (net.Listener, error) {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket: %w", err)
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		lis.Close()
		return nil, fmt.Errorf("chmod socket: %w", err)
	}
	return lis, nil
}

// probeHandlers probes every configured handler; the default one comes first.
func probeHandlers(rc config.Runtime, workDir, self string) []oci.Handler {
	ctx := context.Background()
	defer os.RemoveAll(workDir)
	hs := []oci.Handler{oci.ProbeHandler(ctx, rc.DefaultHandler, rc.Handlers[rc.DefaultHandler].Path, workDir, self)}
	for name, h := range rc.Handlers {
		if name != rc.DefaultHandler {
			hs = append(hs, oci.ProbeHandler(ctx, name, h.Path, workDir, self))
		}
	}
	for _, h := range hs {
		if h.Err != nil {
			klog.InfoS("Runtime handler unavailable", "handler", h.Name, "err", h.Err)
			continue
		}
		klog.InfoS("Runtime handler ready", "handler", h.Name, "path", h.Path, "version", h.Version,
			"userNamespaces", h.Features.UserNamespaces, "recursiveReadOnlyMounts", h.Features.RecursiveReadOnlyMounts)
	}
	return hs
}

// cgroupDriver resolves "detect": systemd when the host was booted with it
// (the sd_booted test), cgroupfs otherwise.
func cgroupDriver(d config.CgroupDriver) string {
	if d != config.CgroupDriverDetect {
		return d.String()
	}
	if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
		return config.CgroupDriverSystemd.String()
	}
	return config.CgroupDriverCgroupfs.String()
}

// configJSON is the effective configuration for verbose Status, without secrets.
func configJSON(cfg *config.Config) string {
	c := *cfg
	c.Registries = make(map[string]config.Registry, len(cfg.Registries))
	for host, r := range cfg.Registries {
		if r.Password != "" || r.Auth != "" || r.IdentityToken != "" {
			r.Password, r.Auth, r.IdentityToken = "<redacted>", "<redacted>", "<redacted>"
		}
		c.Registries[host] = r
	}
	b, _ := json.Marshal(c)
	return string(b)
}

// imageConfig maps the daemon's configuration onto the image service's.
func imageConfig(cfg *config.Config) imagesvc.Config {
	ic := imagesvc.Config{
		Root:                   cfg.Root,
		Registries:             map[string]imagesvc.Registry{},
		MaxConcurrentDownloads: cfg.Images.MaxConcurrentDownloads,
		ProgressTimeout:        cfg.Images.ProgressTimeout.Std(),
		PinnedImages:           cfg.Images.Pinned,
		Limits: imagesvc.Limits{
			ManifestBytes:  cfg.Images.Limits.MaxManifestBytes,
			ConfigBytes:    cfg.Images.Limits.MaxConfigBytes,
			LayerBytes:     cfg.Images.Limits.MaxLayerBytes,
			ImageBytes:     cfg.Images.Limits.MaxImageBytes,
			FilesPerLayer:  int64(cfg.Images.Limits.MaxFilesPerLayer),
			LayersPerImage: cfg.Images.Limits.MaxLayers,
		},
	}
	for host, r := range cfg.Registries {
		reg := imagesvc.Registry{
			PlainHTTP: r.PlainHTTP, SkipVerify: r.SkipVerify,
			CAFile: r.CAFile, CertFile: r.CertFile, KeyFile: r.KeyFile,
		}
		for _, m := range r.Mirrors {
			reg.Mirrors = append(reg.Mirrors, m.String())
		}
		if r.Username != "" || r.Auth != "" || r.IdentityToken != "" {
			reg.Auth = &imagesvc.Auth{Username: r.Username, Password: r.Password, Auth: r.Auth, IdentityToken: r.IdentityToken}
		}
		ic.Registries[host] = reg
	}
	return ic
}

// registerGauges exposes objects by state and the shim count, computed from
// memory at scrape time.
func registerGauges(mx *metrics.Metrics, sandboxes *sandbox.Manager, containers *oci.Manager) {
	mx.Gauge("containers", "Containers by state.", "state", func() map[string]float64 {
		out := map[string]float64{}
		for _, c := range containers.List() {
			out[string(c.State)]++
		}
		return out
	})
	mx.Gauge("pod_sandboxes", "Pod sandboxes by state.", "state", func() map[string]float64 {
		out := map[string]float64{}
		for _, s := range sandboxes.List() {
			out[string(s.State)]++
		}
		return out
	})
	mx.Gauge("shims", "Pod shims the daemon is connected to.", "kind", func() map[string]float64 {
		return map[string]float64{"pod": float64(containers.ShimCount())}
	})
}
