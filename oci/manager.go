package oci

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/nodeagent/nodeagent/internal/faults"
	"github.com/nodeagent/nodeagent/internal/fsutil"
	"github.com/nodeagent/nodeagent/internal/store"
	"github.com/nodeagent/nodeagent/internal/undo"
	"github.com/nodeagent/nodeagent/oci/spec"
	"github.com/nodeagent/nodeagent/oci/stats"
)

// Rootfs prepares container root filesystems from image snapshots; the
// image service provides it.
type Rootfs interface {
	// PrepareRootfs mounts the image's layers with a fresh upper and work
	// dir under dir and returns the mounted rootfs path.
	PrepareRootfs(imageID, dir string) (string, error)
	// ReleaseRootfs unmounts what PrepareRootfs mounted; already gone is
	// success.
	ReleaseRootfs(dir string) error
}

// bucket is the store bucket of container records.
const bucket = "containers"

// Options configure a Manager.
type Options struct {
	DB     *store.DB
	Rootfs Rootfs
	// Root holds container bundles (<root>/containers/<id>).
	Root string
	// State holds shim state (<state>/shims) and runtime state.
	State        string
	Handlers     []Handler
	CgroupDriver string
	Host         spec.HostFacts
	// Binary is the nodeagent binary re-executed as the shim.
	Binary string
	// Observe, when set, receives the duration of each phase of a
	// container start ("rootfs", "runtime_create", "runtime_start").
	Observe func(phase string, d time.Duration)
	// StatsInterval and WritableLayerInterval pace the stats sampler; zero
	// means stats.DefaultInterval and stats.DefaultDirInterval.
	StatsInterval, WritableLayerInterval time.Duration
}

// Manager owns the containers of this node and the per-pod shims that
// monitor them.
type Manager struct {
	opts    Options
	events  *Bus
	shims   *shimSet
	sampler *stats.Sampler // nil when this host's cgroups cannot be read

	mu         sync.RWMutex
	containers map[string]*Container
	names      map[string]string         // name key -> container id
	pending    map[string]*pendingCreate // name key -> create in flight or parked
}

// Image is what a container needs of its image.
type Image struct {
	ID     string
	Ref    string // as the request named it
	Config ocispec.ImageConfig
}

// SandboxInfo is what a container needs of its pod sandbox.
type SandboxInfo struct {
	ID         string
	Config     *runtimeapi.PodSandboxConfig
	Handler    string
	Namespaces []specs.LinuxNamespace
	Files      spec.SandboxFiles
}

// CreateRequest creates one container.
type CreateRequest struct {
	Sandbox SandboxInfo
	Config  *runtimeapi.ContainerConfig
	Image   Image
}

// NewManager loads container records, reconnects to live shims and settles
// what happened while the daemon was away, before the daemon serves.
func NewManager(ctx context.Context, o Options) (*Manager, error) {
	m := &Manager{
		opts:       o,
		events:     NewBus(),
		containers: map[string]*Container{},
		names:      map[string]string{},
		pending:    map[string]*pendingCreate{},
	}
	m.shims = newShimSet(m)
	if err := m.makeDirs(); err != nil {
		return nil, err
	}
	if r, err := stats.NewReader(); err == nil {
		m.sampler = stats.NewSampler(r, o.StatsInterval, stats.WithDirInterval(o.WritableLayerInterval))
		go m.sampler.Run(context.WithoutCancel(ctx))
	}
	if err := m.recover(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// Events is the bus of container events.
func (m *Manager) Events() *Bus { return m.events }

func nameKey(sandboxID string, md *runtimeapi.ContainerMetadata) string {
	return fmt.Sprintf("%s_%s_%d", sandboxID, md.GetName(), md.GetAttempt())
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Create makes a container ready to start: rootfs, spec, and the runtime's
// created container under the pod's shim. Every step is undone on failure.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (string, error) {
	if err := ValidateConfig(req.Config); err != nil {
		return "", err
	}
	md := req.Config.GetMetadata()
	handler, err := m.Handler(req.Sandbox.Handler)
	if err != nil {
		return "", err
	}
	logPath, err := LogPath(req.Sandbox.Config.GetLogDirectory(), req.Config.GetLogPath())
	if err != nil {
		return "", err
	}
	stopSig, err := StopSignal(req.Config.GetStopSignal(), req.Image.Config.StopSignal)
	if err != nil {
		return "", err
	}
	key := nameKey(req.Sandbox.ID, md)
	if id, ok, err := m.takeParked(ctx, key); ok || err != nil {
		return id, err
	}
	id := newID()
	if err := m.reserve(key, id); err != nil {
		return "", err
	}
	rec := Record{
		ID: id, SandboxID: req.Sandbox.ID, Config: req.Config, ImageID: req.Image.ID, ImageRef: req.Image.Ref,
		Handler: handler.Name, State: StateCreated, CreatedAt: now(), Dir: filepath.Join(m.opts.Root, "containers", id),
		LogPath: logPath, StopSignal: int(stopSig), Resources: req.Config.GetLinux().GetResources(), Creating: true,
	}
	p := &pendingCreate{id: id, sandboxID: req.Sandbox.ID, done: make(chan struct{})}
	m.mu.Lock()
	m.pending[key] = p
	m.mu.Unlock()
	go m.finishCreate(ctx, key, p, rec, req, handler)
	select {
	case <-p.done:
		return p.result()
	case <-ctx.Done():
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-p.done: // finished as the caller gave up: it still gets the answer
		return p.result()
	default:
		p.abandoned = true
		return "", ctx.Err()
	}
}

// createTimeout bounds a create that goes on after its caller gave up.
const createTimeout = 4 * time.Minute

// pendingCreate is a container create in flight. One that finishes after its
// caller gave up (kubelet's deadline) is parked: kubelet's retry of the same
// name gets that container instead of "name in use", and the work is not
// done twice (as CRI-O's resourcestore does).
type pendingCreate struct {
	id, sandboxID string
	done          chan struct{} // closed under m.mu once err is set
	err           error
	abandoned     bool // the caller gave up; guarded by m.mu
}

func (p *pendingCreate) result() (string, error) {
	if p.err != nil {
		return "", p.err
	}
	return p.id, nil
}

// finishCreate creates the container detached from the caller's deadline,
// registers it, and parks it if the caller has gone.
func (m *Manager) finishCreate(ctx context.Context, key string, p *pendingCreate, rec Record, req CreateRequest, handler Handler) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), createTimeout)
	defer cancel()
	c, err := m.createRecovered(ctx, rec, req, handler)
	m.mu.Lock()
	p.err = err
	if err == nil {
		m.containers[rec.ID] = c
	} else if m.names[key] == rec.ID {
		delete(m.names, key)
	}
	if err != nil || !p.abandoned {
		delete(m.pending, key)
	}
	close(p.done)
	m.mu.Unlock()
	if err != nil {
		return
	}
	m.track(c.Record())
	m.events.Publish(Event{Type: EventCreated, ContainerID: rec.ID, SandboxID: rec.SandboxID, At: now()})
	if p.abandoned {
		klog.InfoS("Container created after its caller gave up: kept for the retry", "containerID", rec.ID, "name", key)
	}
}

// createRecovered is create in a goroutine that outlives the RPC: a panic
// must fail this create, not the daemon.
func (m *Manager) createRecovered(ctx context.Context, rec Record, req CreateRequest, handler Handler) (c *Container, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("create container %s: panic: %v", rec.ID, r)
			klog.ErrorS(err, "Container create panicked", "stack", string(debug.Stack()))
		}
	}()
	return m.create(ctx, rec, req, handler)
}

// takeParked hands a retry the container that a create of the same name
// whose caller gave up made. A create of the name still in flight is waited
// for first: its caller may have gone without the daemon having noticed
// yet. ok is false when there is nothing to take (none, it failed, or its
// caller got the answer): the caller then creates anew, or is told the name
// is in use.
func (m *Manager) takeParked(ctx context.Context, key string) (id string, ok bool, err error) {
	m.mu.Lock()
	p := m.pending[key]
	m.mu.Unlock()
	if p == nil {
		return "", false, nil
	}
	if err := waitFor(ctx, p.done); err != nil {
		return "", false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.err != nil || !p.abandoned || m.pending[key] != p {
		return "", false, nil
	}
	delete(m.pending, key)
	return p.id, true, nil
}

// waitCreates waits for the creates in flight in a pod, so that a pod
// removed meanwhile does not get a container after its teardown.
func (m *Manager) waitCreates(ctx context.Context, sandboxID string) error {
	m.mu.Lock()
	var waits []chan struct{}
	for _, p := range m.pending {
		if p.sandboxID == sandboxID {
			waits = append(waits, p.done)
		}
	}
	m.mu.Unlock()
	for _, w := range waits {
		if err := waitFor(ctx, w); err != nil {
			return fmt.Errorf("pod %s: waiting for a container create in flight: %w", sandboxID, err)
		}
	}
	return nil
}

func (m *Manager) create(ctx context.Context, rec Record, req CreateRequest, handler Handler) (c *Container, err error) {
	var u undo.Stack
	defer func() {
		if err != nil {
			if uerr := u.Run(ctx); uerr != nil {
				err = fmt.Errorf("%w (cleanup incomplete: %v)", err, uerr)
			}
		}
	}()
	if err := m.save(rec); err != nil {
		return nil, err
	}
	u.Push("record", func(context.Context) error { return m.opts.DB.Delete(bucket, rec.ID) })
	faults.Point("container/after-record")
	if err := os.MkdirAll(rec.Dir, 0o711); err != nil {
		return nil, fmt.Errorf("create bundle: %w", err)
	}
	u.Push("bundle", func(context.Context) error { return os.RemoveAll(rec.Dir) })
	start := time.Now()
	rootfs, err := m.opts.Rootfs.PrepareRootfs(rec.ImageID, rec.Dir)
	if err != nil {
		return nil, err
	}
	m.observe("rootfs", start)
	u.Push("rootfs", func(context.Context) error { return m.opts.Rootfs.ReleaseRootfs(rec.Dir) })
	faults.Point("container/after-rootfs")

	res, err := m.buildSpec(rec, req, rootfs, handler)
	if err != nil {
		return nil, err
	}
	if err := ensureMountpoints(rootfs, res.Spec.Mounts); err != nil {
		return nil, err
	}
	if err := writeSpec(rec.Dir, res.Spec); err != nil {
		return nil, err
	}
	if rec.LogPath != "" {
		if err := os.MkdirAll(filepath.Dir(rec.LogPath), 0o755); err != nil {
			return nil, fmt.Errorf("create log directory: %w", err)
		}
	}
	sh, err := m.shims.get(ctx, req.Sandbox.ID, handler)
	if err != nil {
		return nil, err
	}
	start = time.Now()
	// The shim finishes a create whatever our caller's deadline: wait for
	// its answer, so that the undo never deletes the bundle under a create
	// still running, and a create that completes after the caller gave up
	// is undone here instead of staying in the shim, unknown to us.
	sctx, cancel := shimCallContext(ctx)
	defer cancel()
	pid, err := sh.Create(sctx, shimCreate(rec))
	if err != nil {
		return nil, err
	}
	m.observe("runtime_create", start)
	u.Push("runtime", func(ctx context.Context) error { return sh.Delete(ctx, rec.ID) })
	faults.Point("container/after-shim-create")
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("container %s: the runtime created it after the create timeout, so it is removed: %w", rec.ID, err)
	}

	rec.Pid, rec.UID, rec.GID, rec.AdditionalGIDs = pid, res.User.UID, res.User.GID, res.User.AdditionalGIDs
	rec.CgroupsPath = res.Spec.Linux.CgroupsPath
	rec.Creating = false
	if err := m.save(rec); err != nil {
		return nil, err
	}
	return newContainer(rec, res.Spec.Process), nil
}

// shimCallTimeout bounds the wait for a shim's answer to a create or start.
// The shim bounds each runtime command itself (2 minutes, oci/shim's
// opTimeout); this only guards against a wedged shim.
const shimCallTimeout = 2*time.Minute + 10*time.Second

// shimCallContext is ctx without its cancellation, bounded by
// shimCallTimeout: for shim calls whose outcome we must learn even when our
// caller has gone, because the shim carries them out regardless.
func shimCallContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), shimCallTimeout)
}

// makeDirs creates the directories that hold one subdirectory per
// container, pod or runtime state, spread over the file system (see fsutil).
func (m *Manager) makeDirs() error {
	l := Layout{m.opts.State}
	if err := fsutil.MakeTopDirs(0o711, filepath.Join(m.opts.Root, "containers"), filepath.Join(m.opts.State, "infra")); err != nil {
		return err
	}
	private := []string{filepath.Join(m.opts.State, "shims")}
	for _, h := range m.opts.Handlers {
		private = append(private, l.RuntimeRoot(h.Name))
	}
	return fsutil.MakeTopDirs(0o700, private...)
}

func (m *Manager) buildSpec(rec Record, req CreateRequest, rootfs string, handler Handler) (*spec.Result, error) {
	host := m.opts.Host
	host.RROSupported = handler.Features.RecursiveReadOnlyMounts
	termination := filepath.Join(rec.Dir, "termination-log")
	if err := os.WriteFile(termination, nil, 0o666); err != nil {
		return nil, fmt.Errorf("create termination log: %w", err)
	}
	return spec.Build(spec.Input{
		ID: rec.ID, SandboxID: rec.SandboxID, ImageName: req.Image.Ref,
		Config: req.Config, Sandbox: req.Sandbox.Config, Image: req.Image.Config,
		RootfsPath: rootfs, Namespaces: req.Sandbox.Namespaces, SandboxFiles: req.Sandbox.Files,
		TerminationMessageHostPath: termination,
		CgroupsPath:                CgroupsPath(req.Sandbox.Config.GetLinux().GetCgroupParent(), rec.ID, m.opts.CgroupDriver),
		Host:                       host,
	})
}

func writeSpec(dir string, s *specs.Spec) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode spec: %w", err)
	}
	tmp := filepath.Join(dir, "config.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write spec: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, "config.json"))
}

func (m *Manager) reserve(key, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if other, ok := m.names[key]; ok {
		return fmt.Errorf("container name %q is in use by container %s: %w", key, other, errdefs.ErrAlreadyExists)
	}
	m.names[key] = id
	return nil
}

func (m *Manager) save(r Record) error { return m.opts.DB.Put(bucket, r.ID, r) }

// Handler finds a usable runtime handler by RuntimeClass name ("" = the
// default).
// A handler that cannot run here is refused with the reason its probe found
// at start.
func (m *Manager) Handler(name string) (Handler, error) {
	for i, h := range m.opts.Handlers {
		if h.Name == name || (name == "" && i == 0) {
			if h.Err != nil {
				return Handler{}, fmt.Errorf("runtime_handler %q cannot run on this host: %v: %w", h.Name, h.Err, errdefs.ErrFailedPrecondition)
			}
			return h, nil
		}
	}
	return Handler{}, fmt.Errorf("runtime_handler %q: no such handler configured: %w", name, errdefs.ErrInvalidArgument)
}

func (m *Manager) observe(phase string, start time.Time) {
	if m.opts.Observe != nil {
		m.opts.Observe(phase, time.Since(start))
	}
}

// ShimCount is the number of pod shims this daemon talks to.
func (m *Manager) ShimCount() int {
	m.shims.mu.Lock()
	defer m.shims.mu.Unlock()
	return len(m.shims.shims)
}
