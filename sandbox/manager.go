package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/internal/faults"
	"github.com/nodeagent/nodeagent/internal/fsutil"
	"github.com/nodeagent/nodeagent/internal/nsutil"
	"github.com/nodeagent/nodeagent/internal/podnet"
	"github.com/nodeagent/nodeagent/internal/store"
	"github.com/nodeagent/nodeagent/internal/undo"
)

// Network is what sandboxes need of the pod network; *cni.Manager is one.
type Network interface {
	Attach(ctx context.Context, req podnet.Request) (podnet.Result, error)
	Detach(ctx context.Context, network string, req podnet.Request) error
}

// Infra is the container manager's per-pod machinery: the pod's shim,
// launched ahead of the first container, and the pause process of a pod
// that shares one PID namespace. *oci.Manager provides it.
type Infra interface {
	PrelaunchShim(sandboxID, handler string)
	StartInfra(ctx context.Context, sandboxID, handler string, cfg *runtimeapi.PodSandboxConfig, namespaces map[string]string) (int, error)
	// StopInfra ends the pause process, and the shim of a pod without
	// containers.
	StopInfra(ctx context.Context, sandboxID string) error
}

// bucket is the store bucket of sandbox records.
const bucket = "sandboxes"

// msgCreating is the message of a sandbox whose creation is in progress.
const msgCreating = "being created"

// runTimeout bounds a RunPodSandbox that kubelet stopped waiting for: it is
// finished in the background and handed to kubelet's retry.
const runTimeout = 4 * time.Minute

// Manager owns the pod sandboxes of this node.
type Manager struct {
	db      *store.DB
	network Network
	nsRoot  string // <state>/ns
	dirRoot string // <state>/sandboxes
	binary  string // nodeagent, re-executed as the user-namespace helper

	// Observe, when set, receives the duration of each creation phase
	// ("namespaces", "cni") for metrics.
	Observe func(phase string, d time.Duration)
	// Infra, when set, starts the pause process of pods that share a PID
	// namespace, as a step of their creation.
	Infra Infra

	mu        sync.RWMutex
	sandboxes map[string]*Sandbox
	names     map[string]*reservation // (name, namespace, uid, attempt) -> sandbox
}

// reservation holds a sandbox name while its Run is in flight, so a retry
// waits for it and gets the same sandbox instead of a "name reserved" error.
type reservation struct {
	id   string
	done chan struct{}
	err  error
}

// NewManager loads the sandbox records and recovers them (see Recover) before
// the daemon serves.
func NewManager(ctx context.Context, db *store.DB, network Network, stateDir, binary string) (*Manager, error) {
	m := &Manager{
		binary:    binary,
		db:        db,
		network:   network,
		nsRoot:    filepath.Join(stateDir, "ns"),
		dirRoot:   filepath.Join(stateDir, "sandboxes"),
		sandboxes: map[string]*Sandbox{},
		names:     map[string]*reservation{},
	}
	// Every pod gets a directory in each: spread them (see fsutil).
	if err := fsutil.MakeTopDirs(0o700, m.nsRoot); err != nil {
		return nil, err
	}
	if err := fsutil.MakeTopDirs(0o711, m.dirRoot); err != nil {
		return nil, err
	}
	if err := m.recover(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func nameKey(md *runtimeapi.PodSandboxMetadata) string {
	return fmt.Sprintf("%s_%s_%s_%d", md.GetName(), md.GetNamespace(), md.GetUid(), md.GetAttempt())
}

func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Run creates a sandbox and returns its id. A retry of a Run still in flight
// (kubelet's deadline expired) waits for it and returns the same sandbox.
func (m *Manager) Run(ctx context.Context, cfg *runtimeapi.PodSandboxConfig, handler string) (string, error) {
	if err := Validate(cfg); err != nil {
		return "", err
	}
	key := nameKey(cfg.GetMetadata())
	m.mu.Lock()
	res, exists := m.names[key]
	if !exists {
		res = &reservation{id: newID(), done: make(chan struct{})}
		m.names[key] = res
	}
	m.mu.Unlock()
	if !exists {
		go m.finishRun(ctx, key, res, cfg, handler)
	}
	select {
	case <-res.done:
		if res.err != nil {
			return "", res.err
		}
		if sb := m.lookup(res.id); sb != nil && sb.Record().State != StateReady {
			return "", fmt.Errorf("sandbox name %s is held by NOTREADY sandbox %s: remove it first: %w", key, res.id, errdefs.ErrAlreadyExists)
		}
		return res.id, nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// finishRun creates the sandbox detached from the caller's deadline, then
// releases the name if the creation failed.
func (m *Manager) finishRun(ctx context.Context, key string, res *reservation, cfg *runtimeapi.PodSandboxConfig, handler string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), runTimeout)
	defer cancel()
	res.err = m.createRecovered(ctx, res.id, cfg, handler)
	if res.err != nil {
		m.mu.Lock()
		if m.sandboxes[res.id] == nil {
			delete(m.names, key)
		}
		m.mu.Unlock()
	}
	close(res.done)
}

// createRecovered is create in a goroutine that outlives the RPC: a panic
// must fail this run, not the daemon.
func (m *Manager) createRecovered(ctx context.Context, id string, cfg *runtimeapi.PodSandboxConfig, handler string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("creating sandbox %s panicked: %v: %w", id, r, errdefs.ErrInternal)
		}
	}()
	return m.create(ctx, id, cfg, handler)
}

// create runs every step of a new sandbox, undoing them all on failure. If
// the undo fails too, a NOTREADY record stays for Stop/Remove to finish.
func (m *Manager) create(ctx context.Context, id string, cfg *runtimeapi.PodSandboxConfig, handler string) (err error) {
	rec := Record{
		ID: id, Config: cfg, RuntimeHandler: handler, CreatedAt: time.Now().UnixNano(),
		State: StateNotReady, NSDir: filepath.Join(m.nsRoot, id), Dir: filepath.Join(m.dirRoot, id),
		Message: msgCreating,
	}
	if !hostNetwork(cfg) {
		rec.NetNS = filepath.Join(rec.NSDir, string(nsutil.Net))
	}
	sb := &Sandbox{record: rec}
	var u undo.Stack
	defer func() {
		if err == nil {
			return
		}
		if uerr := u.Run(ctx); uerr != nil {
			_ = sb.update(m.save, func(r *Record) { r.Message = "creation failed and was not fully undone: " + uerr.Error() })
			m.publish(sb)
			err = fmt.Errorf("%w (cleanup incomplete, sandbox %s left NOTREADY: %v)", err, id, uerr)
		}
	}()

	// The record comes first: a crash at any later step leaves something
	// that recovery can find and finish.
	if err := m.save(rec); err != nil {
		return err
	}
	u.Push("record", func(context.Context) error { return m.db.Delete(bucket, id) })
	faults.Point("sandbox/after-record")
	if m.Infra != nil {
		// The shim starts while namespaces and network are set up.
		m.Infra.PrelaunchShim(id, rec.RuntimeHandler)
		u.Push("shim", func(ctx context.Context) error { return m.Infra.StopInfra(ctx, id) })
	}

	start := time.Now()
	if err := m.createNamespaces(rec); err != nil {
		return err
	}
	m.observe("namespaces", start)
	u.Push("namespaces", func(context.Context) error { return nsutil.Unpin(rec.NSDir) })
	faults.Point("sandbox/after-namespaces")

	if err := writeFiles(rec); err != nil {
		return err
	}
	u.Push("files", func(context.Context) error { return removeFiles(rec.Dir) })
	faults.Point("sandbox/after-files")

	if rec.NetNS != "" {
		start := time.Now()
		if err := m.attach(ctx, sb, &u); err != nil {
			return err
		}
		m.observe("cni", start)
	}
	if rec.SharesPID() && m.Infra != nil {
		if err := m.startInfra(ctx, sb, &u); err != nil {
			return err
		}
		faults.Point("sandbox/after-infra")
	}
	faults.Point("sandbox/before-ready")
	if err := sb.update(m.save, func(r *Record) { r.State, r.Message = StateReady, "" }); err != nil {
		return err
	}
	m.publish(sb)
	return nil
}

// startInfra starts the pod's pause process and pins its PID namespace, so
// containers join it by path and a recycled PID can never point them
// elsewhere.
func (m *Manager) startInfra(ctx context.Context, sb *Sandbox, u *undo.Stack) error {
	rec := sb.Record()
	u.Push("infra", func(ctx context.Context) error { return m.Infra.StopInfra(ctx, rec.ID) })
	pid, err := m.Infra.StartInfra(ctx, rec.ID, rec.RuntimeHandler, rec.Config, rec.Namespaces())
	if err != nil {
		return err
	}
	if err := nsutil.PinFrom(pid, rec.NSDir, []nsutil.Type{nsutil.PID}); err != nil {
		return err
	}
	return sb.update(m.save, func(r *Record) { r.PIDPinned = true })
}

func (m *Manager) attach(ctx context.Context, sb *Sandbox, u *undo.Stack) error {
	if err := sb.update(m.save, func(r *Record) { r.Networked = true }); err != nil {
		return err
	}
	rec := sb.Record()
	u.Push("network", func(ctx context.Context) error {
		return m.network.Detach(ctx, sb.Record().Network.Network, m.netRequest(sb.Record()))
	})
	result, err := m.network.Attach(ctx, m.netRequest(rec))
	if err != nil {
		return err
	}
	faults.Point("sandbox/after-cni-add")
	return sb.update(m.save, func(r *Record) { r.Network = result })
}

func (m *Manager) netRequest(r Record) podnet.Request {
	c := r.Config
	req := podnet.Request{
		SandboxID: r.ID, PodName: c.GetMetadata().GetName(), PodNamespace: c.GetMetadata().GetNamespace(),
		PodUID: c.GetMetadata().GetUid(), Result: r.Network.Raw, Bandwidth: bandwidth(c.GetAnnotations()),
	}
	// A pin that is not a namespace any more (after a reboot) is no netns:
	// DEL then runs without one and releases what the plugins hold.
	if r.NetNS != "" && nsutil.IsPinned(r.NetNS) {
		req.NetNS = r.NetNS
	}
	for _, pm := range c.GetPortMappings() {
		if pm.HostPort <= 0 {
			continue
		}
		req.PortMappings = append(req.PortMappings, podnet.PortMapping{
			HostPort: pm.HostPort, ContainerPort: pm.ContainerPort,
			Protocol: strings.ToLower(pm.Protocol.String()), HostIP: pm.HostIp,
		})
	}
	if d := c.GetDnsConfig(); d != nil {
		req.DNS = &podnet.DNS{Servers: d.Servers, Searches: d.Searches, Options: d.Options}
	}
	return req
}

// createNamespaces pins the pod's own net, ipc and uts namespaces, setting
// the hostname and the namespaced sysctls inside them.
func (m *Manager) createNamespaces(r Record) error {
	types := pinTypes(r.Config)
	if len(types) == 0 {
		return nil
	}
	sysctls := r.Config.GetLinux().GetSysctls()
	if userns(r.Config) {
		u := nsOptions(r.Config).GetUsernsOptions()
		paths := map[string]string{}
		for k, v := range sysctls {
			paths[sysctlPath(k)] = v
		}
		return nsutil.CreatePinnedUserns(nsutil.UsernsOptions{
			PinOptions: nsutil.PinOptions{Dir: r.NSDir, Hostname: podHostname(r.Config)},
			UIDs:       idMaps(u.Uids), GIDs: idMaps(u.Gids), Binary: m.binary, Sysctls: paths,
		})
	}
	return nsutil.CreatePinned(nsutil.PinOptions{
		Dir: r.NSDir, Types: types, Hostname: podHostname(r.Config),
		Setup: func() error {
			for k, v := range sysctls {
				if err := os.WriteFile(sysctlPath(k), []byte(v), 0); err != nil {
					return fmt.Errorf("config.linux.sysctls[%q]=%q: %v: %w", k, v, err, errdefs.ErrInvalidArgument)
				}
			}
			return nil
		},
	})
}

// pinTypes are the namespaces a pod gets of its own; host ones are left out.
func pinTypes(c *runtimeapi.PodSandboxConfig) []nsutil.Type {
	var types []nsutil.Type
	if !hostNetwork(c) {
		types = append(types, nsutil.Net, nsutil.UTS)
	}
	if !hostIPC(c) {
		types = append(types, nsutil.IPC)
	}
	return types
}

func (m *Manager) save(r Record) error { return m.db.Put(bucket, r.ID, r) }

func (m *Manager) publish(sb *Sandbox) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sandboxes[sb.Record().ID] = sb
}

func (m *Manager) lookup(id string) *Sandbox {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.sandboxes[id]
}

func idMaps(in []*runtimeapi.IDMapping) []nsutil.IDMap {
	out := make([]nsutil.IDMap, len(in))
	for i, m := range in {
		out[i] = nsutil.IDMap{ContainerID: m.ContainerId, HostID: m.HostId, Size: m.Length}
	}
	return out
}

func (m *Manager) observe(phase string, start time.Time) {
	if m.Observe != nil {
		m.Observe(phase, time.Since(start))
	}
}
