package imagesvc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/containerd/errdefs"
)

// session talks to the endpoints of one repository for one pull: mirrors in
// configured order, then the upstream host. Authentication state (tokens) is
// per session, per endpoint.
type session struct {
	repo      string
	endpoints []endpoint
	primary   int // endpoint that served the manifest; blobs start there
}

type endpoint struct {
	base   *url.URL
	client *http.Client
}

var manifestAccept = strings.Join([]string{
	mediaTypeOCIIndex, mediaTypeOCIManifest, mediaTypeDockerList, mediaTypeDockerManifest,
}, ", ")

func (s *Service) newSession(r Reference, auth *Auth) (*session, error) {
	hc, err := s.hosts.get(r.Domain)
	if err != nil {
		return nil, err
	}
	ss := &session{repo: r.Path}
	scope := "repository:" + r.Path + ":pull"
	add := func(base *url.URL, configured *Auth, mirror bool) {
		at := &authTransport{
			base: hc.transport, host: base.Host, insecure: base.Scheme == "http", scope: scope,
			auth: credentials(auth, configured, base.Host, r.Domain, mirror),
		}
		ss.endpoints = append(ss.endpoints, endpoint{base: base, client: &http.Client{Transport: at}})
	}
	for _, m := range hc.mirrors {
		var configured *Auth
		if reg, ok := s.hosts.cfg[m.Host]; ok {
			configured = reg.Auth
		}
		add(m, configured, true)
	}
	add(hc.upstream, hc.auth, false)
	return ss, nil
}

// get fetches /v2/<repo>/<kind>/<object> from the first endpoint that has
// it, starting at start. The error of the last endpoint tried (the upstream,
// in the usual order) decides the class; the others are quoted.
func (ss *session) get(ctx context.Context, kind, object, accept string, start int) (*http.Response, int, error) {
	var errs []string
	var last error
	for k := range ss.endpoints {
		i := (start + k) % len(ss.endpoints)
		resp, err := ss.endpoints[i].get(ctx, ss.repo, kind, object, accept)
		if err == nil {
			return resp, i, nil
		}
		if last != nil {
			errs = append(errs, last.Error())
		}
		last = err
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) > 0 {
		last = fmt.Errorf("%w (also tried: %s)", last, strings.Join(errs, "; "))
	}
	return nil, -1, last
}

func (e endpoint) get(ctx context.Context, repo, kind, object, accept string) (*http.Response, error) {
	u := apiURL(e.base, repo, kind, object)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, invalid("request %s: %v", u, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, classifyTransport(ctx, "GET "+u, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, classifyStatus("GET "+u, resp)
	}
	return resp, nil
}

// document is a manifest or index as fetched: bytes, their digest and the
// media type the registry declared.
type document struct {
	data      []byte
	digest    string
	mediaType string
}

// manifest fetches a manifest or index by tag or digest, reading at most
// max bytes, and checks its digest: against want when fetched by digest,
// against the registry's Docker-Content-Digest header when it sends one.
func (ss *session) manifest(ctx context.Context, w *watchdog, object, want string, max int64) (document, error) {
	resp, i, err := ss.get(ctx, "manifests", object, manifestAccept, 0)
	if err != nil {
		return document{}, err
	}
	defer resp.Body.Close()
	ss.primary = i
	if resp.ContentLength > max {
		return document{}, fmt.Errorf("manifest %s is %d bytes, limit %d: %w", object, resp.ContentLength, max, errdefs.ErrResourceExhausted)
	}
	data, err := readLimited(w.reader(resp.Body, nil), max)
	if err != nil {
		return document{}, fmt.Errorf("manifest %s: %w", object, readErr(ctx, err))
	}
	d := document{data: data, digest: digestOf(data), mediaType: resp.Header.Get("Content-Type")}
	if want != "" && d.digest != want {
		return document{}, invalid("manifest %s: content digest is %s", want, d.digest)
	}
	if hdr := resp.Header.Get("Docker-Content-Digest"); hdr != "" && strings.HasPrefix(hdr, "sha256:") && hdr != d.digest {
		return document{}, invalid("manifest %s: registry says digest %s, content is %s", object, hdr, d.digest)
	}
	return d, nil
}

// blob opens a blob, trying the endpoint that served the manifest first.
func (ss *session) blob(ctx context.Context, digest string) (io.ReadCloser, error) {
	resp, _, err := ss.get(ctx, "blobs", digest, "", ss.primary)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// readLimited reads all of r, refusing more than max bytes.
func readLimited(r io.Reader, max int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than the %d-byte limit: %w", max, errdefs.ErrResourceExhausted)
	}
	return data, nil
}

// readErr classifies an error met while reading a response body: the pull
// was cancelled (or stalled), or the connection broke.
func readErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	if errors.Is(err, errdefs.ErrResourceExhausted) || errors.Is(err, errdefs.ErrInvalidArgument) {
		return err
	}
	return unavailable("read from registry", err)
}

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}
