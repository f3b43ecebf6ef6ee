package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	scField         = "linux.security_context."
	localhostPrefix = "localhost/"
)

// securityOpts are capabilities, masked paths, AppArmor, privileged and,
// last because its conditional rules read the capabilities, seccomp.
func securityOpts(in Input) ([]SpecOpt, error) {
	sc := in.Config.GetLinux().GetSecurityContext()
	priv := sc.GetPrivileged()
	caps, err := Capabilities(sc.GetCapabilities(), priv, in.Host.BoundingCaps)
	if err != nil {
		return nil, err
	}
	aa, err := AppArmorProfile(sc, in.Host, priv)
	if err != nil {
		return nil, err
	}
	sec, err := seccompOpt(sc, in.SeccompProfileRoot, priv)
	if err != nil {
		return nil, err
	}
	opts := []SpecOpt{WithCapabilities(caps), WithApparmorProfile(aa)}
	// gRPC cannot tell an empty list from an absent one. kubelet sends the
	// defaults unless privileged (cleared below anyway) or ProcMount
	// Unmasked; a client that sends nothing (crictl) must still get the
	// defaults, so empty keeps them and Unmasked is not honoured.
	if p := sc.GetMaskedPaths(); len(p) > 0 {
		opts = append(opts, WithMaskedPaths(p))
	}
	if p := sc.GetReadonlyPaths(); len(p) > 0 {
		opts = append(opts, WithReadonlyPaths(p))
	}
	if priv {
		opts = append(opts, WithPrivileged)
	}
	return append(opts, sec), nil
}

// securityProfile turns the deprecated string form ("runtime/default",
// "docker/default", "unconfined", "localhost/<ref>") into a profile; ""
// is nil.
func securityProfile(s, field string) (*runtimeapi.SecurityProfile, error) {
	switch {
	case s == "":
		return nil, nil
	case s == "runtime/default" || s == "docker/default":
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}, nil
	case s == "unconfined":
		return &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Unconfined}, nil
	case strings.HasPrefix(s, localhostPrefix):
		return &runtimeapi.SecurityProfile{
			ProfileType:  runtimeapi.SecurityProfile_Localhost,
			LocalhostRef: strings.TrimPrefix(s, localhostPrefix),
		}, nil
	}
	return nil, invalid(field, "unknown profile %q", s)
}

// AppArmorProfile is the profile name to confine the process with, "" for
// none. Without AppArmor on the host, RuntimeDefault means none and only
// a Localhost profile, which cannot be honoured, is refused.
func AppArmorProfile(sc *runtimeapi.LinuxContainerSecurityContext, host HostFacts, privileged bool) (string, error) {
	field, sp := scField+"apparmor", sc.GetApparmor()
	if sp == nil {
		var err error
		field = scField + "apparmor_profile"
		if sp, err = securityProfile(sc.GetApparmorProfile(), field); err != nil {
			return "", err
		}
	}
	if sp == nil {
		// kubernetes#51746: no profile means the runtime default.
		sp = &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault}
	}
	if sp.GetProfileType() != runtimeapi.SecurityProfile_Localhost && sp.GetLocalhostRef() != "" {
		return "", invalid(field, "localhost_ref is only for profile type Localhost")
	}
	switch sp.GetProfileType() {
	case runtimeapi.SecurityProfile_Unconfined:
		return "", nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		if privileged || !host.AppArmorEnabled {
			return "", nil
		}
		return host.AppArmorDefaultProfile, nil
	case runtimeapi.SecurityProfile_Localhost:
		name := strings.TrimPrefix(sp.GetLocalhostRef(), localhostPrefix)
		if name == "" {
			return "", invalid(field, "Localhost profile without a name")
		}
		if !host.AppArmorEnabled {
			return "", invalid(field, "profile %q: AppArmor is not enabled on this host", name)
		}
		return name, nil
	}
	return "", invalid(field, "unknown profile type %d", sp.GetProfileType())
}

// WithApparmorProfile sets the AppArmor profile ("" = none).
func WithApparmorProfile(name string) SpecOpt {
	return func(s *specs.Spec) error {
		s.Process.ApparmorProfile = name
		return nil
	}
}

// seccompOpt selects the seccomp option: none for privileged containers,
// Unconfined, or no request (the CRI default is unconfined; kubelet sends
// RuntimeDefault when it wants it), else the default or a Localhost file.
func seccompOpt(sc *runtimeapi.LinuxContainerSecurityContext, root string, privileged bool) (SpecOpt, error) {
	field, sp := scField+"seccomp", sc.GetSeccomp()
	if sp == nil {
		var err error
		field = scField + "seccomp_profile_path"
		if sp, err = securityProfile(sc.GetSeccompProfilePath(), field); err != nil {
			return nil, err
		}
	}
	if privileged || sp == nil {
		return WithoutSeccomp, nil
	}
	if sp.GetProfileType() != runtimeapi.SecurityProfile_Localhost && sp.GetLocalhostRef() != "" {
		return nil, invalid(field, "localhost_ref is only for profile type Localhost")
	}
	switch sp.GetProfileType() {
	case runtimeapi.SecurityProfile_Unconfined:
		return WithoutSeccomp, nil
	case runtimeapi.SecurityProfile_RuntimeDefault:
		return WithDefaultSeccomp, nil
	case runtimeapi.SecurityProfile_Localhost:
		body, err := readSeccompProfile(sp.GetLocalhostRef(), root)
		if err != nil {
			return nil, invalid(field, "%v", err)
		}
		return WithSeccompProfile(body), nil
	}
	return nil, invalid(field, "unknown profile type %d", sp.GetProfileType())
}

// readSeccompProfile reads a Localhost profile: an absolute path, or one
// relative to root that stays under it.
func readSeccompProfile(ref, root string) (string, error) {
	p := strings.TrimPrefix(ref, localhostPrefix)
	if !filepath.IsAbs(p) {
		if root == "" || !filepath.IsLocal(p) {
			return "", fmt.Errorf("profile %q must be an absolute path", p)
		}
		p = filepath.Join(root, p)
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("profile %q not found", p)
	}
	return string(b), err
}

// WithoutSeccomp runs the process unconfined by seccomp.
func WithoutSeccomp(s *specs.Spec) error {
	s.Linux.Seccomp = nil
	return nil
}

// WithDefaultSeccomp applies moby's default profile, with the rules that
// depend on capabilities resolved against the process's bounding set: it
// must come after the capabilities are final.
func WithDefaultSeccomp(s *specs.Spec) error {
	p, err := seccomp.GetDefaultProfile(s)
	if err != nil {
		return err
	}
	s.Linux.Seccomp = p
	return nil
}

// WithSeccompProfile applies a profile in moby's JSON format (which is
// also the OCI one), capability-conditional rules resolved as above.
func WithSeccompProfile(body string) SpecOpt {
	return func(s *specs.Spec) error {
		p, err := seccomp.LoadProfile(body, s)
		if err != nil {
			return invalid(scField+"seccomp", "%v", err)
		}
		s.Linux.Seccomp = p
		return nil
	}
}
