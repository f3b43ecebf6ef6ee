package imagesvc

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/containerd/errdefs"
)

// Reference is a parsed, normalised image reference: what kubelet's and
// containerd's ParseDockerRef produce. Domain and Path are always set;
// exactly one of Tag and Digest is set.
type Reference struct {
	Domain string // "docker.io", "registry.k8s.io", "localhost:5000"
	Path   string // "library/busybox"
	Tag    string // "latest"
	Digest string // "sha256:<64 hex>"
}

const (
	dockerDomain  = "docker.io"
	officialRepo  = "library/"
	defaultTag    = "latest"
	maxNameLength = 255
)

// The grammar of github.com/distribution/reference, which kubelet and
// containerd use.
var (
	pathComponent = `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
	domainLabel   = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
	domainRe      = regexp.MustCompile(`^(?:` + domainLabel + `(?:\.` + domainLabel + `)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	pathRe        = regexp.MustCompile(`^` + pathComponent + `(?:/` + pathComponent + `)*$`)
	tagRe         = regexp.MustCompile(`^[\w][\w.-]{0,127}$`)
	digestRe      = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$`)
	sha256Re      = regexp.MustCompile(`^sha256:[a-f0-9]{64}$`)
	hex64Re       = regexp.MustCompile(`^[a-f0-9]{64}$`)
)

// ParseReference normalises s like kubelet and containerd: "busybox" is
// docker.io/library/busybox:latest; a reference with both tag and digest
// keeps only the digest (the digest is what is pulled).
func ParseReference(s string) (Reference, error) {
	bad := func(why string) (Reference, error) {
		return Reference{}, fmt.Errorf("image reference %q: %s: %w", s, why, errdefs.ErrInvalidArgument)
	}
	if s == "" {
		return bad("empty")
	}
	if hex64Re.MatchString(s) {
		return bad("a 64-character hex string is an image id, not a name")
	}
	name, digest, hasDigest := strings.Cut(s, "@")
	if hasDigest {
		if !digestRe.MatchString(digest) {
			return bad("invalid digest")
		}
		if !sha256Re.MatchString(digest) {
			return Reference{}, fmt.Errorf("image reference %q: only sha256 digests are supported: %w", s, errdefs.ErrNotImplemented)
		}
	}
	name, tag, hasTag := splitTag(name)
	if hasTag && !tagRe.MatchString(tag) {
		return bad("invalid tag")
	}
	if len(name) > maxNameLength {
		return bad("name longer than 255 characters")
	}
	domain, path := splitDomain(name)
	if !domainRe.MatchString(domain) {
		return bad("invalid registry host")
	}
	if strings.ToLower(path) != path {
		return bad("repository name must be lowercase")
	}
	if !pathRe.MatchString(path) {
		return bad("invalid repository name")
	}
	r := Reference{Domain: domain, Path: path, Tag: tag, Digest: digest}
	if r.Digest != "" {
		r.Tag = ""
	} else if r.Tag == "" {
		r.Tag = defaultTag
	}
	return r, nil
}

// splitTag cuts ":tag" off the last path component (a ":" before the last
// "/" is a registry port).
func splitTag(name string) (string, string, bool) {
	i := strings.LastIndexByte(name, ':')
	if i < 0 || strings.IndexByte(name[i:], '/') >= 0 {
		return name, "", false
	}
	return name[:i], name[i+1:], true
}

// splitDomain applies Docker's rule: the first component is a registry host
// only if it contains "." or ":", is "localhost", or has upper case.
func splitDomain(name string) (string, string) {
	domain, rest := dockerDomain, name
	if first, after, ok := strings.Cut(name, "/"); ok &&
		(strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first) {
		domain, rest = first, after
	}
	if domain == "index.docker.io" {
		domain = dockerDomain
	}
	if domain == dockerDomain && !strings.Contains(rest, "/") {
		rest = officialRepo + rest
	}
	return domain, rest
}

// Name is the repository: "docker.io/library/busybox".
func (r Reference) Name() string { return r.Domain + "/" + r.Path }

// String is the canonical form: name:tag or name@digest.
func (r Reference) String() string {
	if r.Digest != "" {
		return r.Name() + "@" + r.Digest
	}
	return r.Name() + ":" + r.Tag
}

// object is what the registry API calls the reference: the tag or digest.
func (r Reference) object() string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}
