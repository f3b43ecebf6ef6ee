package cni

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/containerd/errdefs"
	"github.com/containernetworking/cni/libcni"
	cnitypes "github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/nodeagent/nodeagent/internal/podnet"
)

// ifName is the pod's interface, as kubelet and the other runtimes name it.
const ifName = "eth0"

// Attach runs CNI ADD of the default network for a pod. The caller stores the
// returned result before reporting success, so that DEL can use it.
func (m *Manager) Attach(ctx context.Context, req podnet.Request) (podnet.Result, error) {
	list, _, err := m.Network()
	if err != nil {
		return podnet.Result{}, fmt.Errorf("%w: %w", err, errdefs.ErrFailedPrecondition)
	}
	rt := runtimeConf(req)
	addCtx, cancel := m.bounded(ctx, "ADD")
	defer cancel()
	res, err := m.cni.AddNetworkList(addCtx, list, rt)
	if err != nil {
		// ADD failed part-way: DEL undoes whatever the chain did, as the CNI
		// spec requires of the runtime.
		m.undoAdd(ctx, list, rt)
		return podnet.Result{}, m.opErr("ADD", list.Name, addCtx, err)
	}
	out, err := toResult(list.Name, res)
	if err != nil {
		m.undoAdd(ctx, list, rt)
		return podnet.Result{}, err
	}
	return out, nil
}

// undoAdd runs DEL after a failed ADD, bounded even when the caller's
// context is already done.
func (m *Manager) undoAdd(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) {
	delCtx, cancel := m.bounded(context.WithoutCancel(ctx), "DEL")
	defer cancel()
	_ = m.cni.DelNetworkList(delCtx, list, rt)
}

// timeoutError is the cause of a context ended by the CNI timeout, so that
// the error says which limit ended the plugin rather than "killed".
type timeoutError struct {
	op      string
	timeout time.Duration
}

func (e timeoutError) Error() string {
	return fmt.Sprintf("%s did not finish within %v (config key cni.timeout)", e.op, e.timeout)
}

func (m *Manager) bounded(ctx context.Context, op string) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, m.timeout, timeoutError{op, m.timeout})
}

// opErr classifies an ADD or DEL failure: a plugin killed by the CNI
// timeout is DeadlineExceeded, naming the limit; a plugin's own failure
// keeps its message.
func (m *Manager) opErr(op, network string, ctx context.Context, err error) error {
	var te timeoutError
	if errors.As(context.Cause(ctx), &te) {
		return fmt.Errorf("CNI network %q %s: plugin killed: %w: %w", network, op, te, context.DeadlineExceeded)
	}
	return fmt.Errorf("CNI network %q %s: %w", network, op, err)
}

// Detach runs CNI DEL for a pod. It is idempotent (CNI DEL must be) and works
// when the netns is gone or no result was ever stored: plugins then release
// what they hold (IPAM, iptables) by container ID.
func (m *Manager) Detach(ctx context.Context, network string, req podnet.Request) error {
	rt := runtimeConf(req)
	list, err := m.listFor(network, rt)
	if err != nil {
		return err
	}
	if list == nil {
		return nil // never attached to any network we know
	}
	delCtx, cancel := m.bounded(ctx, "DEL")
	defer cancel()
	if err := m.cni.DelNetworkList(delCtx, list, rt); err != nil {
		return m.opErr("DEL", list.Name, delCtx, err)
	}
	return nil
}

// listFor returns the config to DEL with: the one cached at ADD time (the conf
// dir may have changed since), else the current default network.
func (m *Manager) listFor(network string, rt *libcni.RuntimeConf) (*libcni.NetworkConfigList, error) {
	if network != "" {
		raw, _, err := m.cni.GetNetworkListCachedConfig(&libcni.NetworkConfigList{Name: network}, rt)
		if err == nil && len(raw) > 0 {
			if list, err := libcni.NetworkConfFromBytes(raw); err == nil {
				return list, nil
			}
		}
	}
	list, _, err := m.Network()
	if err != nil {
		if network == "" {
			return nil, nil
		}
		return nil, fmt.Errorf("no config for network %q to run DEL with: %w", network, err)
	}
	return list, nil
}

func runtimeConf(req podnet.Request) *libcni.RuntimeConf {
	caps := map[string]any{}
	if len(req.PortMappings) > 0 {
		caps["portMappings"] = req.PortMappings
	}
	if req.Bandwidth != nil {
		caps["bandwidth"] = req.Bandwidth
	}
	if req.DNS != nil {
		caps["dns"] = req.DNS
	}
	return &libcni.RuntimeConf{
		ContainerID: req.SandboxID,
		NetNS:       req.NetNS,
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "1"},
			{"K8S_POD_NAMESPACE", req.PodNamespace},
			{"K8S_POD_NAME", req.PodName},
			{"K8S_POD_INFRA_CONTAINER_ID", req.SandboxID},
			{"K8S_POD_UID", req.PodUID},
		},
		CapabilityArgs: caps,
	}
}

// toResult extracts the pod IPs, IPv4 first, preferring addresses on the
// pod's own interface (plugins may also report the host side).
func toResult(network string, res cnitypes.Result) (podnet.Result, error) {
	raw, err := json.Marshal(res)
	if err != nil {
		return podnet.Result{}, fmt.Errorf("encode CNI result: %w", err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return podnet.Result{}, fmt.Errorf("convert CNI result: %w", err)
	}
	var v4, v6 []string
	for _, ipc := range r.IPs {
		if ipc.Interface != nil && *ipc.Interface < len(r.Interfaces) && r.Interfaces[*ipc.Interface].Sandbox == "" {
			continue // a host-side address
		}
		ip := ipc.Address.IP
		if ip.To4() != nil {
			v4 = append(v4, ip.String())
		} else {
			v6 = append(v6, ip.String())
		}
	}
	ips := slices.Concat(v4, v6)
	if len(ips) == 0 {
		return podnet.Result{}, errors.New("CNI result has no pod IP")
	}
	for _, ip := range ips {
		if net.ParseIP(ip) == nil {
			return podnet.Result{}, fmt.Errorf("CNI result: bad IP %q", ip)
		}
	}
	return podnet.Result{Network: network, IPs: ips, Raw: raw}, nil
}
