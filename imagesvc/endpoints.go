package imagesvc

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/containerd/errdefs"
)

// dockerHubAPI is where the docker.io registry API actually lives.
const dockerHubAPI = "registry-1.docker.io"

// hostConfig is one upstream host resolved from Config: where to go, in
// which order, over which transport. Transports are shared by every pull of
// the host so connections are reused.
type hostConfig struct {
	domain    string
	mirrors   []*url.URL
	upstream  *url.URL
	transport *http.Transport
	auth      *Auth // from config, used when the request has none
}

// hosts builds and caches hostConfigs.
type hosts struct {
	cfg     map[string]Registry
	timeout time.Duration
	maxConn int

	mu    sync.Mutex
	cache map[string]*hostConfig
}

func newHosts(cfg Config) (*hosts, error) {
	h := &hosts{cfg: cfg.Registries, timeout: cfg.ProgressTimeout, maxConn: cfg.MaxConcurrentDownloads + 2, cache: map[string]*hostConfig{}}
	// Build configured hosts now so a bad CA file or mirror URL fails the
	// daemon's start, not the first pull.
	for domain := range cfg.Registries {
		if _, err := h.get(domain); err != nil {
			return nil, err
		}
	}
	return h, nil
}

func (h *hosts) get(domain string) (*hostConfig, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if hc, ok := h.cache[domain]; ok {
		return hc, nil
	}
	reg := h.cfg[domain]
	hc := &hostConfig{domain: domain, upstream: upstreamBase(domain, reg.PlainHTTP), auth: reg.Auth}
	for _, m := range reg.Mirrors {
		u, err := mirrorBase(m)
		if err != nil {
			return nil, fmt.Errorf("registry %s: %w", domain, err)
		}
		hc.mirrors = append(hc.mirrors, u)
	}
	t, err := h.transport(reg)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", domain, err)
	}
	hc.transport = t
	h.cache[domain] = hc
	return hc, nil
}

// upstreamBase is the API root of a registry host.
func upstreamBase(domain string, plain bool) *url.URL {
	host := domain
	if domain == dockerDomain {
		host = dockerHubAPI
	}
	scheme := "https"
	if plain {
		scheme = "http"
	}
	return &url.URL{Scheme: scheme, Host: host, Path: "/v2"}
}

// mirrorBase parses a mirror URL into its API root, as containerd's
// hosts.toml does: no scheme means HTTPS, "http://" means plain HTTP, a path
// is kept and "/v2" appended unless already there.
func mirrorBase(raw string) (*url.URL, error) {
	s := raw
	if !strings.Contains(s, "://") {
		s = "https://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("mirror %q: want http(s)://host[:port][/path]: %w", raw, errdefs.ErrInvalidArgument)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(u.Path, "/v2") {
		u.Path += "/v2"
	}
	return u, nil
}

// apiURL is base + /<repo>/<kind>/<object>: the host is the endpoint's, the
// repository path is the image's (docker.io's "library/" included).
func apiURL(base *url.URL, repo, kind, object string) string {
	return base.String() + "/" + repo + "/" + kind + "/" + object
}

func (h *hosts) transport(reg Registry) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	// Layers are already compressed; transparent gzip would also change
	// the bytes whose digest we verify.
	t.DisableCompression = true
	t.ResponseHeaderTimeout = h.timeout
	t.MaxIdleConnsPerHost = h.maxConn
	tc, err := tlsConfig(reg)
	if err != nil {
		return nil, err
	}
	t.TLSClientConfig = tc
	return t, nil
}

func tlsConfig(reg Registry) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: reg.SkipVerify} //nolint:gosec // opt-in per host
	if reg.CAFile != "" {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(reg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA file %s holds no PEM certificate: %w", reg.CAFile, errdefs.ErrInvalidArgument)
		}
		tc.RootCAs = pool
	}
	if reg.CertFile != "" || reg.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(reg.CertFile, reg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
