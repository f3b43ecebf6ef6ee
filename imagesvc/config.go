package imagesvc

import (
	"fmt"
	"path"
	"path/filepath"
	"time"

	"github.com/containerd/errdefs"
	"github.com/nodeagent/nodeagent/imagesvc/overlay"
)

// Config configures the image service.
type Config struct {
	// Root holds blobs/sha256/<hex>, snapshots/<chain-id>/fs and ingest/
	// (work in progress, wiped at start), e.g. /var/lib/nodeagent.
	Root string
	// Registries is keyed by upstream host as references name it
	// ("docker.io", "registry.k8s.io", "localhost:5000").
	Registries map[string]Registry
	// MaxConcurrentDownloads bounds layer downloads across all pulls
	// (default 3, as containerd and dockerd).
	MaxConcurrentDownloads int
	// ProgressTimeout cancels a pull that received no byte for this long
	// (default 1m). Total time is never limited: a slow, moving pull lives.
	ProgressTimeout time.Duration
	// PinnedImages are globs (path.Match) on repo tags and repo digests;
	// matching images are reported pinned (kubelet's GC skips them).
	PinnedImages []string
	// Limits caps what a registry can make us read and write.
	Limits Limits
}

// Registry configures one upstream host and its mirrors.
type Registry struct {
	// Mirrors are tried in order before the upstream host, e.g.
	// "http://127.0.0.1:5000" (plain HTTP) or "https://mirror.example.com".
	// A pull of HOST/repo:tag asks MIRROR/v2/repo/manifests/tag: the host
	// is dropped, the repository path kept (containerd's hosts.toml).
	Mirrors []string
	// PlainHTTP talks HTTP, not HTTPS, to the upstream host.
	PlainHTTP bool
	// CAFile adds a CA bundle; CertFile/KeyFile present a client
	// certificate; SkipVerify disables TLS verification. They apply to the
	// upstream and its mirrors.
	CAFile, CertFile, KeyFile string
	SkipVerify                bool
	// Auth is used when the pull request carries none.
	Auth *Auth
}

// Auth is a registry credential, as CRI's AuthConfig carries it.
type Auth struct {
	Username, Password string
	Auth               string // base64("user:password")
	IdentityToken      string // OAuth2 refresh token
	RegistryToken      string // bearer token sent as is
	// ServerAddress, when set, limits the credential to that host (the
	// image's registry or a mirror), as containerd does; empty means every
	// endpoint of the pull may see it.
	ServerAddress string
}

// Limits caps untrusted sizes. Zero fields take the defaults.
type Limits struct {
	ManifestBytes  int64 // manifest or index document (default 4 MiB)
	ConfigBytes    int64 // image config (default 8 MiB)
	LayerBytes     int64 // uncompressed bytes of one layer (default 32 GiB)
	ImageBytes     int64 // uncompressed bytes of one image (default 64 GiB)
	FilesPerLayer  int64 // tar entries of one layer (default 1<<20)
	LayersPerImage int   // default 128; overlayfs stacks at most 500
	LayerBlobBytes int64 // compressed bytes of one layer (default = LayerBytes)
}

func (c *Config) setDefaults() error {
	if c.Root == "" || !filepath.IsAbs(c.Root) {
		return fmt.Errorf("image root %q must be an absolute path: %w", c.Root, errdefs.ErrInvalidArgument)
	}
	if c.MaxConcurrentDownloads <= 0 {
		c.MaxConcurrentDownloads = 3
	}
	if c.ProgressTimeout <= 0 {
		c.ProgressTimeout = time.Minute
	}
	for _, g := range c.PinnedImages {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("pinned image glob %q: %w", g, errdefs.ErrInvalidArgument)
		}
	}
	l := &c.Limits
	setDefault(&l.ManifestBytes, 4<<20)
	setDefault(&l.ConfigBytes, 8<<20)
	setDefault(&l.LayerBytes, 32<<30)
	setDefault(&l.ImageBytes, 64<<30)
	setDefault(&l.FilesPerLayer, 1<<20)
	setDefault(&l.LayerBlobBytes, l.LayerBytes)
	if l.LayersPerImage <= 0 {
		l.LayersPerImage = 128
	}
	if l.LayersPerImage > overlay.MaxLayers {
		return fmt.Errorf("layers per image %d exceeds overlayfs' %d: %w", l.LayersPerImage, overlay.MaxLayers, errdefs.ErrInvalidArgument)
	}
	return nil
}

func setDefault(v *int64, d int64) {
	if *v <= 0 {
		*v = d
	}
}

// pinned reports whether any of refs matches a pinned glob.
func (c *Config) pinned(refs []string) bool {
	for _, g := range c.PinnedImages {
		for _, r := range refs {
			if ok, _ := path.Match(g, r); ok {
				return true
			}
		}
	}
	return false
}
