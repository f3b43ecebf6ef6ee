package testregistry

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
)

// goBinary compiles the embedded main package in dir (nnp or pause) into a
// static, stripped executable. The source is embedded rather than read from
// the tree so that any binary linking this package can build it; -trimpath,
// -buildvcs=false and an empty build ID keep the bytes, and so the digests,
// independent of where and at which commit it is built.
func goBinary(ctx context.Context, dir string) ([]byte, error) {
	src, err := recipe.ReadFile(dir + "/main.go")
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "testregistry-"+dir+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "main.go"), src, 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "go.mod"), []byte("module "+dir+"\n\ngo 1.26\n"), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags=-s -w -buildid=", "-o", dir, ".")
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64",
		"GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local")
	if _, err := output(cmd); err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(tmp, dir))
}
