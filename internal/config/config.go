// Package config loads nodeagent's configuration: the embedded defaults, one TOML
// file, its config.d/ drop-ins, then flags. Each layer overrides only the keys it
// sets. Unknown keys and bad values are errors naming the key and its line.
//
// It must not import any other nodeagent package.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// DefaultPath is where the daemon looks for its configuration file.
const DefaultPath = "/etc/nodeagent/config.toml"

//go:embed default.toml
var defaultTOML []byte

// DefaultTOML is the full, commented default configuration.
func DefaultTOML() []byte { return defaultTOML }

// Config is the daemon's configuration.
type Config struct {
	Socket       string       `toml:"socket" json:"socket"`
	Root         string       `toml:"root" json:"root"`
	State        string       `toml:"state" json:"state"`
	CgroupDriver CgroupDriver `toml:"cgroup_driver" json:"cgroup_driver"`
	CNI          CNI          `toml:"cni" json:"cni"`
	Runtime      Runtime      `toml:"runtime" json:"runtime"`
	Images       Images       `toml:"images" json:"images"`
	// Registries by upstream host name ("docker.io", "registry.k8s.io:443").
	Registries map[string]Registry `toml:"registries" json:"registries"`
	Streaming  Streaming           `toml:"streaming" json:"streaming"`
	Metrics    Metrics             `toml:"metrics" json:"metrics"`
	Stats      Stats               `toml:"stats" json:"stats"`
}

// CNI configures pod networking.
type CNI struct {
	ConfDir string   `toml:"conf_dir" json:"conf_dir"`
	BinDirs []string `toml:"bin_dirs" json:"bin_dirs"`
	// Timeout bounds one ADD or DEL; a plugin still running is killed.
	Timeout Duration `toml:"timeout" json:"timeout"`
}

// Runtime configures the OCI runtime handlers.
type Runtime struct {
	DefaultHandler string             `toml:"default_handler" json:"default_handler"`
	Handlers       map[string]Handler `toml:"handlers" json:"handlers"`
}

// Handler is one RuntimeClass handler.
type Handler struct {
	Path string `toml:"path" json:"path"`
}

// Images configures pulls and the image store.
type Images struct {
	MaxConcurrentDownloads int         `toml:"max_concurrent_downloads" json:"max_concurrent_downloads"`
	ProgressTimeout        Duration    `toml:"progress_timeout" json:"progress_timeout"`
	Pinned                 []string    `toml:"pinned" json:"pinned"`
	Limits                 ImageLimits `toml:"limits" json:"limits"`
}

// ImageLimits bound untrusted image content.
type ImageLimits struct {
	MaxManifestBytes int64 `toml:"max_manifest_bytes" json:"max_manifest_bytes"`
	MaxConfigBytes   int64 `toml:"max_config_bytes" json:"max_config_bytes"`
	MaxLayers        int   `toml:"max_layers" json:"max_layers"`
	MaxLayerBytes    int64 `toml:"max_layer_bytes" json:"max_layer_bytes"`
	MaxImageBytes    int64 `toml:"max_image_bytes" json:"max_image_bytes"`
	MaxFilesPerLayer int   `toml:"max_files_per_layer" json:"max_files_per_layer"`
}

// Registry configures pulls from one registry host.
type Registry struct {
	Mirrors       []URL  `toml:"mirrors" json:"mirrors"`
	PlainHTTP     bool   `toml:"plain_http" json:"plain_http"`
	SkipVerify    bool   `toml:"skip_verify" json:"skip_verify"`
	CAFile        string `toml:"ca_file" json:"ca_file"`
	CertFile      string `toml:"cert_file" json:"cert_file"`
	KeyFile       string `toml:"key_file" json:"key_file"`
	Username      string `toml:"username" json:"username"`
	Password      string `toml:"password" json:"password"`
	Auth          string `toml:"auth" json:"auth"`
	IdentityToken string `toml:"identity_token" json:"identity_token"`
}

// Streaming configures the exec/attach/port-forward server.
type Streaming struct {
	Address     string   `toml:"address" json:"address"`
	Port        int      `toml:"port" json:"port"`
	IdleTimeout Duration `toml:"idle_timeout" json:"idle_timeout"`
	// URLTTL is how long a streaming URL stays valid unused.
	URLTTL Duration `toml:"url_ttl" json:"url_ttl"`
	// TLSCertFile and TLSKeyFile (PEM), both or neither, make the server HTTPS.
	TLSCertFile string `toml:"tls_cert_file" json:"tls_cert_file"`
	TLSKeyFile  string `toml:"tls_key_file" json:"tls_key_file"`
}

// Metrics configures the Prometheus endpoint.
type Metrics struct {
	Address string `toml:"address" json:"address"`
}

// Stats configures the background sampler that stats and metrics RPCs read.
type Stats struct {
	// Interval is how often container and pod cgroups are read.
	Interval Duration `toml:"interval" json:"interval"`
	// WritableLayerInterval is how often writable layers are walked.
	WritableLayerInterval Duration `toml:"writable_layer_interval" json:"writable_layer_interval"`
}

// Default returns the embedded default configuration.
func Default() *Config {
	c := &Config{}
	if err := decode(c, "<defaults>", defaultTOML); err != nil {
		panic(fmt.Sprintf("embedded default config is invalid: %v", err))
	}
	return c
}

// Load reads the defaults, then path (absent is fine unless required), then the
// *.toml drop-ins of config.d/ beside it in lexical order.
func Load(path string, required bool) (*Config, error) {
	c := Default()
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := decode(c, path, raw); err != nil {
			return nil, err
		}
	case errors.Is(err, fs.ErrNotExist) && !required:
	default:
		return nil, fmt.Errorf("read config: %w", err)
	}
	dropins, err := dropIns(filepath.Join(filepath.Dir(path), "config.d"))
	if err != nil {
		return nil, err
	}
	for _, p := range dropins {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("read config drop-in: %w", err)
		}
		if err := decode(c, p, raw); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func dropIns(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config drop-ins: %w", err)
	}
	var paths []string
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".toml") {
			paths = append(paths, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(paths)
	return paths, nil
}

// decode applies one TOML document onto c, strictly: an unknown key or a value
// of the wrong type is an error naming the file, line and key.
func decode(c *Config, name string, raw []byte) error {
	dec := toml.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	err := dec.Decode(c)
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var msgs []string
		for _, e := range strict.Errors {
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("%s:%d: unknown key %q", name, row, strings.Join(e.Key(), ".")))
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		if key == "" {
			return fmt.Errorf("%s:%d: %s", name, row, de.Error())
		}
		return fmt.Errorf("%s:%d: key %q: %s", name, row, key, de.Error())
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
