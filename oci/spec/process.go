package spec

import (
	"fmt"
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// processOpts are the options for spec.process and the rootfs.
func processOpts(in Input) ([]SpecOpt, UserInfo, error) {
	c := in.Config
	args, err := ProcessArgs(c.GetCommand(), c.GetArgs(), in.Image)
	if err != nil {
		return nil, UserInfo{}, err
	}
	cwd, err := workingDir(c.GetWorkingDir(), in.Image.WorkingDir)
	if err != nil {
		return nil, UserInfo{}, err
	}
	env, err := containerEnv(in)
	if err != nil {
		return nil, UserInfo{}, err
	}
	user, err := ResolveUser(in.RootfsPath, c.GetLinux().GetSecurityContext(), in.Image.User)
	if err != nil {
		return nil, UserInfo{}, err
	}
	res := c.GetLinux().GetResources()
	sc := c.GetLinux().GetSecurityContext()
	return []SpecOpt{
		WithRootPath(in.RootfsPath),
		WithReadonlyRootfs(sc.GetReadonlyRootfs()),
		WithProcessArgs(args...),
		WithCwd(cwd),
		WithEnv(env...),
		WithTerminal(c.GetTty()),
		WithUser(user),
		WithDefaultHome(user.Home),
		WithNofileLimit(in.Host.NofileMax),
		WithOOMScoreAdj(int(res.GetOomScoreAdj()), in.Host.OOMScoreAdjMin),
		WithNoNewPrivileges(sc.GetNoNewPrivs()),
	}, user, nil
}

// ProcessArgs merges the CRI command and args with the image's entrypoint
// and cmd the way kubelet documents it (and Docker, containerd and CRI-O do
// it): command replaces the entrypoint and drops the image cmd; args replace
// the cmd.
func ProcessArgs(command, args []string, image ocispec.ImageConfig) ([]string, error) {
	if len(command) == 0 {
		if len(args) == 0 {
			args = image.Cmd
		}
		// An entrypoint of [""] is Docker's way of saying "none".
		if len(image.Entrypoint) != 1 || image.Entrypoint[0] != "" {
			command = image.Entrypoint
		}
	}
	out := append(append([]string{}, command...), args...)
	if len(out) == 0 {
		return nil, invalid("command", "no command specified and the image has neither entrypoint nor cmd")
	}
	return out, nil
}

// workingDir is the config's, else the image's, else "/"; runc wants it
// absolute.
func workingDir(config, image string) (string, error) {
	field, dir := "working_dir", config
	if dir == "" {
		field, dir = "image config WorkingDir", image
	}
	if dir == "" {
		return "/", nil
	}
	if !path.IsAbs(dir) {
		return "", invalid(field, "%q is not absolute", dir)
	}
	return path.Clean(dir), nil
}

// containerEnv is HOSTNAME, then the image's env, then the config's envs:
// later entries win by key.
func containerEnv(in Input) ([]string, error) {
	host := in.Hostname
	if host == "" {
		host = in.Sandbox.GetHostname()
	}
	var env []string
	if host != "" {
		env = append(env, "HOSTNAME="+host)
	}
	env = append(env, in.Image.Env...)
	for i, kv := range in.Config.GetEnvs() {
		k, v := kv.GetKey(), string(kv.GetValue())
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.Contains(v, "\x00") {
			return nil, invalid(fmt.Sprintf("envs[%d]", i), "invalid variable %q", k)
		}
		env = append(env, k+"="+v)
	}
	return env, nil
}

// mergeEnv returns base with each of add set, replacing an entry of the
// same key in place; an add without "=" unsets the key (Docker's rule for
// image env).
func mergeEnv(base []string, add ...string) []string {
	out := append([]string{}, base...)
	index := make(map[string]int, len(out))
	for i, e := range out {
		k, _, _ := strings.Cut(e, "=")
		index[k] = i
	}
	for _, e := range add {
		k, _, set := strings.Cut(e, "=")
		i, seen := index[k]
		switch {
		case !set && seen:
			out[i] = ""
		case set && seen:
			out[i] = e
		case set:
			index[k] = len(out)
			out = append(out, e)
		}
	}
	kept := out[:0]
	for _, e := range out {
		if e != "" {
			kept = append(kept, e)
		}
	}
	return kept
}

// WithRootPath sets the rootfs directory.
func WithRootPath(p string) SpecOpt {
	return func(s *specs.Spec) error {
		if s.Root == nil {
			s.Root = &specs.Root{}
		}
		s.Root.Path = p
		return nil
	}
}

// WithReadonlyRootfs makes the rootfs read-only when ro is true.
func WithReadonlyRootfs(ro bool) SpecOpt {
	return func(s *specs.Spec) error {
		if s.Root == nil {
			s.Root = &specs.Root{}
		}
		s.Root.Readonly = ro
		return nil
	}
}

// WithProcessArgs sets argv.
func WithProcessArgs(args ...string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.Args = args
		return nil
	}
}

// WithCwd sets the working directory.
func WithCwd(cwd string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.Cwd = cwd
		return nil
	}
}

// WithEnv sets each variable, later ones winning by key.
func WithEnv(env ...string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.Env = mergeEnv(s.Process.Env, env...)
		return nil
	}
}

// WithDefaultHome sets HOME when nothing set it, as runc and Docker do
// for a process started without one.
func WithDefaultHome(home string) SpecOpt {
	return func(s *specs.Spec) error {
		for _, e := range s.Process.Env {
			if strings.HasPrefix(e, "HOME=") {
				return nil
			}
		}
		if home == "" {
			home = "/"
		}
		s.Process.Env = append(s.Process.Env, "HOME="+home)
		return nil
	}
}

// WithTerminal gives the process a pty (config tty). stdin and stdin_once
// are the shim's business, not the spec's.
func WithTerminal(tty bool) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.Terminal = tty
		return nil
	}
}

// WithUser sets the uid, gid and additional gids.
func WithUser(u UserInfo) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.User = specs.User{UID: u.UID, GID: u.GID, AdditionalGids: u.AdditionalGIDs}
		return nil
	}
}

// WithNofileLimit sets RLIMIT_NOFILE to 1048576, or to limit when the
// host cannot give more (raising a hard limit needs CAP_SYS_RESOURCE,
// and runc would fail the start).
func WithNofileLimit(limit uint64) SpecOpt {
	return func(s *specs.Spec) error {
		n := uint64(defaultNofile)
		if limit != 0 && limit < n {
			n = limit
		}
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: n, Soft: n}}
		return nil
	}
}

// WithOOMScoreAdj sets oom_score_adj, raised to floor: below the daemon's
// own score the kernel refuses without CAP_SYS_RESOURCE, and kubelet asks
// -997 of every Guaranteed pod.
func WithOOMScoreAdj(adj, floor int) SpecOpt {
	return func(s *specs.Spec) error {
		adj = min(max(adj, floor, -1000), 1000)
		s.Process.OOMScoreAdj = &adj
		return nil
	}
}

// WithNoNewPrivileges sets no_new_privs.
func WithNoNewPrivileges(on bool) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.NoNewPrivileges = on
		return nil
	}
}
