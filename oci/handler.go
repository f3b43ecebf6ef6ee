package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Handler is one runtime handler (a RuntimeClass handler name bound to an OCI
// runtime binary) and what probing it at start found.
type Handler struct {
	Name string
	// Path is the resolved runtime binary.
	Path string
	// Version is the first line of `<runtime> --version`.
	Version string
	// Err, when set, is why the handler cannot run containers on this host;
	// requests for it are refused with this reason.
	Err      error
	Features Features
}

// Features are the optional capabilities of a handler that kubelet asks about.
type Features struct {
	// RecursiveReadOnlyMounts: the runtime knows the "rro" mount option.
	RecursiveReadOnlyMounts bool
	// UserNamespaces: the runtime can idmap mounts (runc >= 1.2).
	UserNamespaces bool
}

// ProbeHandler resolves a handler's binary and asks it what it can do. A
// handler that cannot be probed is returned with Err set, never dropped, so
// that Status can say why.
//
// The probe runs one trial container (the daemon's own binary printing its
// default config, in an empty rootfs) under workDir, because some runtimes
// only refuse a host when they set up a container: Debian's crun 1.8.1 says
// "cgroups in hybrid mode not supported" on a hybrid cgroup host.
func ProbeHandler(ctx context.Context, name, path, workDir, self string) Handler {
	h := Handler{Name: name, Path: path}
	resolved, err := exec.LookPath(path)
	if err != nil {
		h.Err = fmt.Errorf("runtime handler %q: binary %q not found: %w", name, path, err)
		return h
	}
	h.Path = resolved
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, resolved, "--version").Output()
	if err != nil {
		h.Err = fmt.Errorf("runtime handler %q: %s --version: %w", name, resolved, err)
		return h
	}
	h.Version, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
	// `features` is absent from old runtimes; then no optional feature is claimed.
	if out, err := exec.CommandContext(ctx, resolved, "features").Output(); err == nil {
		h.Features = parseFeatures(out)
	}
	if err := trialRun(ctx, resolved, filepath.Join(workDir, name), self); err != nil {
		h.Err = fmt.Errorf("runtime handler %q cannot run containers on this host: %w", name, err)
	}
	return h
}

// trialRun runs a container that exits at once and removes every trace of it.
func trialRun(ctx context.Context, runtime, dir, self string) error {
	defer os.RemoveAll(dir)
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(rootfs, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(rootfs, "probe"), nil, 0o555); err != nil {
		return err
	}
	spec := fmt.Sprintf(`{"ociVersion":"1.0.2","process":{"args":["/probe","config","default"],"cwd":"/","user":{"uid":0,"gid":0}},
"root":{"path":"rootfs","readonly":true},
"mounts":[{"destination":"/probe","type":"bind","source":%q,"options":["rbind","ro"]}],
"linux":{"namespaces":[{"type":"mount"},{"type":"pid"}]}}`, self)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(spec), 0o600); err != nil {
		return err
	}
	id := fmt.Sprintf("nodeagent-probe-%d", os.Getpid())
	cmd := exec.CommandContext(ctx, runtime, "--root", filepath.Join(dir, "state"), "run", "--bundle", dir, id)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return errors.New(msg)
	}
	return nil
}

// runtimeFeatures is the part of the OCI runtime features document
// (runtime-spec features.md) we read.
type runtimeFeatures struct {
	MountOptions []string `json:"mountOptions"`
	Linux        *struct {
		MountExtensions *struct {
			IDMap *struct {
				Enabled *bool `json:"enabled"`
			} `json:"idmap"`
		} `json:"mountExtensions"`
	} `json:"linux"`
}

func parseFeatures(doc []byte) Features {
	var rf runtimeFeatures
	if err := json.Unmarshal(doc, &rf); err != nil {
		return Features{}
	}
	f := Features{RecursiveReadOnlyMounts: slices.Contains(rf.MountOptions, "rro")}
	if l := rf.Linux; l != nil && l.MountExtensions != nil && l.MountExtensions.IDMap != nil {
		f.UserNamespaces = l.MountExtensions.IDMap.Enabled != nil && *l.MountExtensions.IDMap.Enabled
	}
	return f
}
