package imagesvc

import (
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// authTransport authenticates lazily: requests go out anonymously until the
// endpoint answers 401 with a challenge; then go-containerregistry's
// token exchange (basic, bearer, OAuth2 identity tokens, registry tokens)
// builds the authenticated transport and the request is retried. This saves
// the "/v2/" ping round trip of every pull, and anonymous registries see a
// single request per object.
type authTransport struct {
	base     http.RoundTripper
	host     string // endpoint host[:port]; credentials are only sent there
	insecure bool
	auth     authn.Authenticator
	scope    string

	mu    sync.Mutex
	inner http.RoundTripper // set once challenged
}

func (a *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	a.mu.Lock()
	inner := a.inner
	a.mu.Unlock()
	if inner != nil {
		return inner.RoundTrip(req)
	}
	resp, err := a.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || req.Body != nil || req.URL.Host != a.host {
		return resp, err
	}
	ch, ok := parseChallenge(resp.Header.Values("WWW-Authenticate"))
	if !ok {
		return resp, nil
	}
	resp.Body.Close()
	ch.Insecure = a.insecure
	inner, err = a.authenticate(req, ch)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	a.inner = inner
	a.mu.Unlock()
	return inner.RoundTrip(req.Clone(req.Context()))
}

func (a *authTransport) authenticate(req *http.Request, ch *transport.Challenge) (http.RoundTripper, error) {
	opts := []name.Option{name.WeakValidation}
	if a.insecure {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(a.host, opts...)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(ch.Scheme, "bearer") {
		return transport.FromToken(reg, a.auth, a.base, ch, nil)
	}
	cfg, err := a.auth.Authorization()
	if err != nil {
		return nil, err
	}
	tok := &transport.Token{Token: cfg.RegistryToken}
	if tok.Token == "" {
		if tok, err = transport.Exchange(req.Context(), reg, a.auth, a.base, []string{a.scope}, ch); err != nil {
			return nil, err
		}
		if tok.Token == "" {
			tok.Token = tok.AccessToken
		}
	}
	return transport.FromToken(reg, a.auth, a.base, ch, tok)
}

// parseChallenge reads the first Basic or Bearer challenge of
// WWW-Authenticate headers (RFC 7235 auth-params, quoted or not).
func parseChallenge(headers []string) (*transport.Challenge, bool) {
	for _, h := range headers {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
		if !strings.EqualFold(scheme, "bearer") && !strings.EqualFold(scheme, "basic") {
			continue
		}
		return &transport.Challenge{Scheme: strings.ToLower(scheme), Parameters: parseParams(rest)}, true
	}
	return nil, false
}

func parseParams(s string) map[string]string {
	params := map[string]string{}
	for {
		s = strings.TrimLeft(s, " ,")
		key, rest, ok := strings.Cut(s, "=")
		if !ok {
			return params
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val string
		if strings.HasPrefix(rest, `"`) {
			val, rest = unquote(rest[1:])
		} else {
			val, rest, _ = strings.Cut(rest, ",")
			val = strings.TrimSpace(val)
		}
		params[key] = val
		s = rest
	}
}

// unquote reads a quoted-string body up to its closing quote.
func unquote(s string) (string, string) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			i++
			b.WriteByte(s[i])
		case c == '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), ""
}

// credentials picks what an endpoint may see: the request's credential
// (limited to its ServerAddress when set, as containerd does), else the
// host's configured one.
func credentials(req, configured *Auth, endpointHost, domain string, mirror bool) authn.Authenticator {
	a := configured
	if req != nil {
		a = req
		if req.ServerAddress != "" {
			want := serverHost(req.ServerAddress)
			if want != endpointHost && (mirror || want != domain) {
				return authn.Anonymous
			}
		}
	}
	if a == nil {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
	})
}

// serverHost reduces a docker-config style server address
// ("https://index.docker.io/v1/") to a registry host ("docker.io").
func serverHost(addr string) string {
	host := addr
	if u, err := url.Parse(addr); err == nil && u.Host != "" {
		host = u.Host
	} else {
		host, _, _ = strings.Cut(addr, "/")
	}
	switch host {
	case "index.docker.io", dockerHubAPI:
		return dockerDomain
	}
	return host
}
