package config

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// deploy/config.toml is what `make install` puts in /etc/nodeagent and what the
// README calls the configuration reference; it must be exactly what
// `nodeagent config default` prints.
func TestDeployConfigMatchesDefault(t *testing.T) {
	path := filepath.Join("..", "..", "deploy", "config.toml")
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	if !bytes.Equal(got, DefaultTOML()) {
		t.Fatalf("%s differs from the embedded default (internal/config/default.toml); regenerate it with `make deploy-config`", path)
	}
}
