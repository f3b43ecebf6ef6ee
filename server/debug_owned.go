package server

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"

	"github.com/nodeagent/nodeagent/internal/debugapi"
	"github.com/nodeagent/nodeagent/oci"
	"github.com/nodeagent/nodeagent/sandbox"
)

// Owned lists what the daemon's records own on the host, for `crictl-lite
// doctor`: anything of ours that is not listed here is a leak.
func (d *Debug) Owned(context.Context, *debugapi.OwnedRequest) (*debugapi.OwnedResponse, error) {
	resp := &debugapi.OwnedResponse{
		Root: d.opts.Root, State: d.opts.State, CgroupDriver: d.opts.CgroupDriver, CNICacheDir: d.opts.CNICacheDir,
	}
	for _, r := range d.srv.sandboxes.List() {
		resp.Sandboxes = append(resp.Sandboxes, d.ownedSandbox(r))
		if n := r.Network.Network; n != "" && !slices.Contains(resp.Networks, n) {
			resp.Networks = append(resp.Networks, n)
		}
	}
	for _, c := range d.srv.containers.List() {
		resp.Containers = append(resp.Containers, debugapi.OwnedContainer{
			ID: c.ID, SandboxID: c.SandboxID, Handler: c.Handler, Dir: c.Dir, CgroupsPath: c.CgroupsPath,
		})
	}
	for _, h := range d.srv.handlers {
		resp.Handlers = append(resp.Handlers, debugapi.OwnedHandler{
			Name: h.Name, Path: h.Path, Root: oci.Layout{State: d.opts.State}.RuntimeRoot(h.Name),
		})
	}
	if list, _, err := d.srv.network.Network(); err == nil {
		if !slices.Contains(resp.Networks, list.Name) {
			resp.Networks = append(resp.Networks, list.Name)
		}
		for _, p := range list.Plugins {
			var conf struct {
				Type   string `json:"type"`
				Bridge string `json:"bridge"`
			}
			if json.Unmarshal(p.Bytes, &conf) == nil && conf.Type == "bridge" {
				resp.Bridges = append(resp.Bridges, cmp.Or(conf.Bridge, "cni0"))
			}
		}
	}
	return resp, nil
}

func (d *Debug) ownedSandbox(r sandbox.Record) debugapi.OwnedSandbox {
	md := r.Config.GetMetadata()
	o := debugapi.OwnedSandbox{
		ID: r.ID, Name: md.GetName(), Namespace: md.GetNamespace(), State: string(r.State),
		NSDir: r.NSDir, NetNS: r.NetNS, Dir: r.Dir,
		ShimDir:      oci.Layout{State: d.opts.State}.ShimDir(r.ID),
		CgroupParent: r.Config.GetLinux().GetCgroupParent(),
		Network:      r.Network.Network, IPs: r.Network.IPs,
	}
	if r.SharesPID() {
		o.InfraDir = oci.Layout{State: d.opts.State}.InfraDir(r.ID)
	}
	var res struct {
		Interfaces []struct {
			Name    string `json:"name"`
			Sandbox string `json:"sandbox"`
		} `json:"interfaces"`
	}
	if json.Unmarshal(r.Network.Raw, &res) == nil {
		for _, i := range res.Interfaces {
			if i.Sandbox == "" && i.Name != "" {
				o.HostInterfaces = append(o.HostInterfaces, i.Name)
			}
		}
	}
	return o
}
