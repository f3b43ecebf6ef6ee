package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/nodeagent/nodeagent/test/e2e/framework"
)

// newStreamingEnv is newPodEnv with config for the daemon.
func newStreamingEnv(t *testing.T, config string) *podEnv {
	t.Helper()
	d := framework.StartDaemon(t, framework.Options{Args: framework.MirrorArgs(t), Config: config})
	framework.AddBridge(t, d)
	waitFor(t, func() bool { return condition(status1(t, d), runtimeapi.NetworkReady).Status })
	if _, err := d.Images.PullImage(framework.Ctx(t), &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: busybox}}); err != nil {
		t.Fatalf("PullImage: %v", err)
	}
	pod := d.PodConfig(t, "ctr")
	return &podEnv{d: d, podID: runPod(t, d, pod), pod: pod}
}

// selfSigned writes a self-signed certificate for localhost and 127.0.0.1,
// its own CA, and its key; it returns their paths.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestStreamingTLS serves streams over HTTPS with a self-signed
// certificate: crictl trusting it streams over both transports, a client
// that does not trust it is refused, and plain HTTP gets nowhere.
func TestStreamingTLS(t *testing.T) {
	requireCrictl(t)
	certFile, keyFile := selfSigned(t)
	e := newStreamingEnv(t, fmt.Sprintf("[streaming]\ntls_cert_file = %q\ntls_key_file = %q\n", certFile, keyFile))
	id := e.create(t, "tls", "sleep", "3600")
	e.start(t, id)
	for _, tr := range transports {
		// crictl wants a client certificate with a CA; the server asks for none.
		out, errOut, code := crictl(t, e.d, nil, "exec", "-r", tr, "--tls-ca", certFile, "--tls-cert", certFile, "--tls-key", keyFile, id, "echo", "secret")
		if out != "secret\n" || code != 0 {
			t.Errorf("%s: exec over TLS = %q %q exit %d", tr, out, errOut, code)
		}
	}

	resp, err := e.d.Runtime.Exec(framework.Ctx(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(resp.Url, "https://127.0.0.1:") {
		t.Fatalf("URL %q is not HTTPS on loopback", resp.Url)
	}
	plain := strings.Replace(resp.Url, "https://", "http://", 1)
	if r, err := http.Post(plain, "text/plain", nil); err == nil {
		r.Body.Close()
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("plain HTTP to the TLS port: HTTP %d", r.StatusCode)
		}
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	// crictl without TLS flags skips verification; a Go client does not.
	if r, err := http.Post(resp.Url, "text/plain", nil); err == nil || !strings.Contains(err.Error(), "certificate") {
		if err == nil {
			r.Body.Close()
		}
		t.Errorf("HTTPS to a client without the CA: %v, want a certificate error", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	c := http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	// The URL was not consumed by plain HTTP: a TLS client reaches the
	// handler, which wants an upgrade.
	r, err := c.Post(resp.Url, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusBadRequest {
		t.Errorf("HTTPS without an upgrade: HTTP %d, want 400", r.StatusCode)
	}
}

// TestStreamingURLExpiry sets streaming.url_ttl short: a URL unused past
// it is gone (404) like a used one, while a fresh one still reaches the
// handler (400: no upgrade).
func TestStreamingURLExpiry(t *testing.T) {
	e := newStreamingEnv(t, "[streaming]\nurl_ttl = \"1s\"\n")
	id := e.create(t, "ttl", "sleep", "3600")
	e.start(t, id)
	url := func() string {
		resp, err := e.d.Runtime.Exec(framework.Ctx(t), &runtimeapi.ExecRequest{ContainerId: id, Cmd: []string{"true"}, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		return resp.Url
	}
	post := func(u string) int {
		r, err := http.Post(u, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	old := url()
	time.Sleep(1500 * time.Millisecond)
	if code := post(url()); code != http.StatusBadRequest {
		t.Errorf("fresh URL: HTTP %d, want 400", code)
	}
	if code := post(old); code != http.StatusNotFound {
		t.Errorf("expired URL: HTTP %d, want 404", code)
	}
}

// TestStreamingIdleTimeout sets streaming.idle_timeout to 2s: an exec that
// writes nothing and reads nothing ends by itself, over both transports,
// and its process with it.
func TestStreamingIdleTimeout(t *testing.T) {
	requireCrictl(t)
	e := newStreamingEnv(t, "[streaming]\nidle_timeout = \"2s\"\n")
	id := e.create(t, "idle", "sleep", "3600")
	e.start(t, id)
	for i, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			mark := fmt.Sprintf("%d", 4170+i)
			start := time.Now()
			_, errOut, code := crictl(t, e.d, nil, "exec", "-r", tr, id, "sleep", mark)
			took := time.Since(start)
			// Over SPDY crictl exits 0: the server closes the connection
			// and the client reads no status, as with kubelet.
			if took > 15*time.Second {
				t.Errorf("idle exec ended after %v, want about 2s", took)
			}
			waitFor(t, func() bool {
				ps := e.exec(t, id, "ps", "-o", "args")
				return !strings.Contains(string(ps.Stdout), "sleep "+mark)
			})
			t.Logf("ended after %v, exit %d: %s", took.Round(100*time.Millisecond), code, errOut[strings.LastIndex(errOut, "msg="):])
		})
	}
}
