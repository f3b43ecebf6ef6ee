package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	if c.Socket != "/run/nodeagent/nodeagent.sock" || c.Root != "/var/lib/nodeagent" || c.State != "/run/nodeagent" {
		t.Errorf("unexpected default paths: %+v", c)
	}
	if c.Images.ProgressTimeout.Std() != time.Minute {
		t.Errorf("progress_timeout = %v", c.Images.ProgressTimeout.Std())
	}
	if c.CNI.Timeout.Std() != time.Minute {
		t.Errorf("cni.timeout = %v", c.CNI.Timeout.Std())
	}
	if c.Runtime.Handlers["runc"].Path != "runc" {
		t.Errorf("runc handler = %+v", c.Runtime.Handlers)
	}
}

func TestLoadLayers(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "config.toml")
	write(t, main, "root = \"/srv/na\"\n[runtime.handlers.kata]\npath = \"/usr/bin/kata\"\n")
	write(t, filepath.Join(dir, "config.d", "10-a.toml"), "root = \"/srv/a\"\n[registries.\"docker.io\"]\nmirrors = [\"http://127.0.0.1:5000\"]\n")
	write(t, filepath.Join(dir, "config.d", "20-b.toml"), "[cni]\nconf_dir = \"/etc/x\"\n")
	write(t, filepath.Join(dir, "config.d", "ignored.txt"), "garbage")
	c, err := Load(main, true)
	if err != nil {
		t.Fatal(err)
	}
	if c.Root != "/srv/a" {
		t.Errorf("root = %q, want the drop-in's", c.Root)
	}
	if c.CNI.ConfDir != "/etc/x" || len(c.CNI.BinDirs) != 1 {
		t.Errorf("cni = %+v: drop-in must override only the keys it sets", c.CNI)
	}
	if _, ok := c.Runtime.Handlers["runc"]; !ok {
		t.Errorf("handlers = %v: defaults lost when adding one", c.Runtime.Handlers)
	}
	if c.Runtime.Handlers["kata"].Path != "/usr/bin/kata" {
		t.Errorf("handlers = %v", c.Runtime.Handlers)
	}
	if got := c.Registries["docker.io"].Mirrors; len(got) != 1 || got[0].String() != "http://127.0.0.1:5000" {
		t.Errorf("mirrors = %v", got)
	}
}

func TestLoadAbsentFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "none.toml")
	if _, err := Load(p, false); err != nil {
		t.Errorf("absent optional config: %v", err)
	}
	if _, err := Load(p, true); err == nil {
		t.Error("absent required config: no error")
	}
}

func TestLoadErrorsNameKeyAndLine(t *testing.T) {
	cases := []struct {
		name, doc string
		want      []string
	}{
		{"unknown top key", "root = \"/x\"\nbogus = 1\n", []string{":2:", `"bogus"`}},
		{"unknown nested key", "[cni]\nconf_dir = \"/x\"\nbin_dir = \"/y\"\n", []string{":3:", `"cni.bin_dir"`}},
		{"bad driver", "cgroup_driver = \"openrc\"\n", []string{":1:", "cgroup_driver", "openrc"}},
		{"bad duration", "[images]\nprogress_timeout = \"soon\"\n", []string{":2:", "progress_timeout"}},
		{"negative duration", "[streaming]\nidle_timeout = \"-1s\"\n", []string{":2:", "idle_timeout", "positive"}},
		{"bad mirror", "[registries.\"docker.io\"]\nmirrors = [\"ftp://x\"]\n", []string{":2:", "mirrors", "scheme"}},
		{"wrong type", "socket = 5\n", []string{":1:", "socket"}},
		{"syntax", "root = \n", []string{":1:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config.toml")
			write(t, p, tc.doc)
			_, err := Load(p, true)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"relative root", func(c *Config) { c.Root = "var/lib" }, `"root"`},
		{"relative bin dir", func(c *Config) { c.CNI.BinDirs = []string{"/opt", "bin"} }, "cni.bin_dirs"},
		{"long socket", func(c *Config) { c.Socket = "/" + strings.Repeat("s", 120) }, "107 bytes"},
		{"unknown default handler", func(c *Config) { c.Runtime.DefaultHandler = "kata" }, "runtime.default_handler"},
		{"zero downloads", func(c *Config) { c.Images.MaxConcurrentDownloads = 0 }, "max_concurrent_downloads"},
		{"bad port", func(c *Config) { c.Streaming.Port = 70000 }, "streaming.port"},
		{"TLS cert without key", func(c *Config) { c.Streaming.TLSCertFile = "/etc/hostname" }, "set both or neither"},
		{"relative TLS key", func(c *Config) { c.Streaming.TLSCertFile, c.Streaming.TLSKeyFile = "/etc/hostname", "key.pem" }, "streaming.tls_key_file"},
		{"unreadable TLS cert", func(c *Config) {
			c.Streaming.TLSCertFile, c.Streaming.TLSKeyFile = "/nonexistent/cert.pem", "/etc/hostname"
		}, "streaming.tls_cert_file"},
		{"zero CNI timeout", func(c *Config) { c.CNI.Timeout = 0 }, "cni.timeout"},
		{"zero stats interval", func(c *Config) { c.Stats.Interval = 0 }, "stats.interval"},
		{"tiny walk interval", func(c *Config) { c.Stats.WritableLayerInterval = Duration(time.Millisecond) }, "stats.writable_layer_interval"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			tc.mut(c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate() = %v, want mention of %s", err, tc.want)
			}
		})
	}
}

func TestAddMirror(t *testing.T) {
	c := Default()
	if err := c.AddMirror("registry.k8s.io=http://127.0.0.1:5000"); err != nil {
		t.Fatal(err)
	}
	if got := c.Registries["registry.k8s.io"].Mirrors; len(got) != 1 || got[0].String() != "http://127.0.0.1:5000" {
		t.Errorf("mirrors = %v", got)
	}
	for _, bad := range []string{"nohost", "=http://x", "h=", "h=127.0.0.1:5000"} {
		if err := c.AddMirror(bad); err == nil {
			t.Errorf("AddMirror(%q): no error", bad)
		}
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
