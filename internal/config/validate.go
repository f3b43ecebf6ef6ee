package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Validate checks what the decoder cannot see alone: relations between keys and
// values that are well-typed but unusable. Each error names the key.
func (c *Config) Validate() error {
	var errs []error
	for key, p := range map[string]string{
		"socket": c.Socket, "root": c.Root, "state": c.State, "cni.conf_dir": c.CNI.ConfDir,
	} {
		if !filepath.IsAbs(p) {
			errs = append(errs, fmt.Errorf("key %q: %q is not an absolute path", key, p))
		}
	}
	for i, d := range c.CNI.BinDirs {
		if !filepath.IsAbs(d) {
			errs = append(errs, fmt.Errorf("key \"cni.bin_dirs\"[%d]: %q is not an absolute path", i, d))
		}
	}
	if c.CNI.Timeout.Std() <= 0 {
		errs = append(errs, fmt.Errorf("key \"cni.timeout\": %v must be positive", c.CNI.Timeout.Std()))
	}
	// A unix socket path longer than sun_path cannot be bound.
	if len(c.Socket) >= 108 {
		errs = append(errs, fmt.Errorf("key \"socket\": %q is longer than 107 bytes", c.Socket))
	}
	if _, ok := c.Runtime.Handlers[c.Runtime.DefaultHandler]; !ok {
		errs = append(errs, fmt.Errorf("key \"runtime.default_handler\": %q is not in [runtime.handlers]", c.Runtime.DefaultHandler))
	}
	for name, h := range c.Runtime.Handlers {
		if name == "" || h.Path == "" {
			errs = append(errs, fmt.Errorf("key \"runtime.handlers.%s.path\": must be set", name))
		}
	}
	if c.Images.MaxConcurrentDownloads < 1 {
		errs = append(errs, fmt.Errorf("key \"images.max_concurrent_downloads\": %d must be at least 1", c.Images.MaxConcurrentDownloads))
	}
	for host := range c.Registries {
		if host == "" || strings.ContainsAny(host, "/ ") {
			errs = append(errs, fmt.Errorf("key \"registries.%s\": not a registry host name", host))
		}
	}
	if c.Streaming.Port < 0 || c.Streaming.Port > 65535 {
		errs = append(errs, fmt.Errorf("key \"streaming.port\": %d is not a port", c.Streaming.Port))
	}
	errs = append(errs, c.Streaming.validateTLS()...)
	for key, d := range map[string]Duration{"stats.interval": c.Stats.Interval, "stats.writable_layer_interval": c.Stats.WritableLayerInterval} {
		if d.Std() < 100*time.Millisecond {
			errs = append(errs, fmt.Errorf("key %q: %v is below the 100ms minimum", key, d.Std()))
		}
	}
	return errors.Join(errs...)
}

// AddMirror adds a mirror for host from a --registry-mirror HOST=URL flag.
func (c *Config) AddMirror(flag string) error {
	host, raw, ok := strings.Cut(flag, "=")
	if !ok || host == "" || raw == "" {
		return fmt.Errorf("--registry-mirror %q: want HOST=URL", flag)
	}
	u, err := ParseURL(raw)
	if err != nil {
		return fmt.Errorf("--registry-mirror %q: %w", flag, err)
	}
	if c.Registries == nil {
		c.Registries = map[string]Registry{}
	}
	r := c.Registries[host]
	r.Mirrors = append(r.Mirrors, u)
	c.Registries[host] = r
	return nil
}

// validateTLS checks the streaming server's key pair: both files or
// neither, absolute and readable. Whether they are a pair the server finds
// out when it loads them.
func (s Streaming) validateTLS() []error {
	files := []struct{ key, path string }{{"streaming.tls_cert_file", s.TLSCertFile}, {"streaming.tls_key_file", s.TLSKeyFile}}
	if (s.TLSCertFile == "") != (s.TLSKeyFile == "") {
		return []error{errors.New(`keys "streaming.tls_cert_file" and "streaming.tls_key_file": set both or neither`)}
	}
	var errs []error
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if !filepath.IsAbs(f.path) {
			errs = append(errs, fmt.Errorf("key %q: %q is not an absolute path", f.key, f.path))
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			errs = append(errs, fmt.Errorf("key %q: %w", f.key, err))
			continue
		}
		fh.Close()
	}
	return errs
}
