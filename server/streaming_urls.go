package server

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/url"
	"path"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// DefaultURLTTL is how long a streaming URL stays valid, as in kubelet's
// streaming server: kubectl connects right after the RPC returns.
const DefaultURLTTL = time.Minute

// maxPendingURLs bounds the URLs handed out and not yet used.
const maxPendingURLs = 1000

// urlCache holds the requests behind streaming URLs, each under a random
// token that names it once: consume removes it, and it expires after ttl
// even unused. An unguessable, single-use token is the URL's only
// credential.
type urlCache struct {
	base url.URL
	ttl  time.Duration
	now  func() time.Time

	mu      sync.Mutex
	pending map[string]pendingURL
}

type pendingURL struct {
	req     any // *runtimeapi.ExecRequest, AttachRequest or PortForwardRequest
	expires time.Time
}

func newURLCache(base url.URL, ttl time.Duration) *urlCache {
	if ttl <= 0 {
		ttl = DefaultURLTTL
	}
	return &urlCache{base: base, ttl: ttl, now: time.Now, pending: map[string]pendingURL{}}
}

// insert files req and returns its URL, /<kind>/<token> under the base.
func (c *urlCache) insert(kind string, req any) (string, error) {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	token := base64.RawURLEncoding.EncodeToString(b)

	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for t, p := range c.pending {
		if !now.Before(p.expires) {
			delete(c.pending, t)
		}
	}
	if len(c.pending) >= maxPendingURLs {
		return "", fmt.Errorf("%d streaming URLs are pending: %w", len(c.pending), errdefs.ErrResourceExhausted)
	}
	c.pending[token] = pendingURL{req: req, expires: now.Add(c.ttl)}
	u := c.base
	u.Path = path.Join("/", u.Path, kind, token)
	return u.String(), nil
}

// consume returns the request behind token if it is pending, unexpired and
// a T, and forgets it either way.
func consume[T any](c *urlCache, token string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.pending[token]
	delete(c.pending, token)
	req, isT := p.req.(T)
	return req, ok && isT && c.now().Before(p.expires)
}

// The checks below are those of CRI's ExecRequest and AttachRequest: "tty
// and stderr cannot both be true" (one terminal carries both), and at least
// one stream must be asked for.

func checkStreams(tty, stdin, stdout, stderr bool) error {
	if tty && stderr {
		return fmt.Errorf("stderr: tty and stderr cannot both be true: %w", errdefs.ErrInvalidArgument)
	}
	if !stdin && !stdout && !stderr {
		return fmt.Errorf("stdin, stdout, stderr: one must be set: %w", errdefs.ErrInvalidArgument)
	}
	return nil
}

// GetExec returns the URL of an exec.
func (st *streamServer) GetExec(req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if len(req.GetCmd()) == 0 {
		return nil, fmt.Errorf("cmd: required: %w", errdefs.ErrInvalidArgument)
	}
	if err := checkStreams(req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return nil, err
	}
	u, err := st.urls.insert("exec", req)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ExecResponse{Url: u}, nil
}

// GetAttach returns the URL of an attach.
func (st *streamServer) GetAttach(req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if err := checkStreams(req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return nil, err
	}
	u, err := st.urls.insert("attach", req)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.AttachResponse{Url: u}, nil
}

// GetPortForward returns the URL of a port-forward.
func (st *streamServer) GetPortForward(req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	u, err := st.urls.insert("portforward", req)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PortForwardResponse{Url: u}, nil
}
