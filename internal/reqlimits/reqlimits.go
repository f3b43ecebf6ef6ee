// Package reqlimits holds the bounds nodeagent puts on untrusted CRI request
// fields that end up in records, paths and memory: object names, labels and
// annotations, environment. Every record is kept in memory and in the store
// and is copied by each List, so an unbounded request would cost every later
// call; the limits sit well above what the Kubernetes API server admits, so
// no valid pod is ever refused.
//
// It imports nothing of nodeagent.
package reqlimits

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/containerd/errdefs"
)

const (
	// MaxName bounds a metadata name, namespace or uid: a DNS subdomain,
	// the longest name Kubernetes gives an object, is 253 bytes.
	MaxName = 253
	// MaxMetadata bounds labels plus annotations of one object, keys and
	// values: twice the API server's 256 KiB limit on annotations, which
	// leaves room for labels and what kubelet adds.
	MaxMetadata = 512 << 10
	// MaxEnv bounds a container's environment, names and values: a
	// quarter of a 4 MiB gRPC message and half of Linux's default
	// 2 MiB argument+environment limit for execve.
	MaxEnv = 1 << 20
)

// Name checks a metadata name, namespace or uid: non-empty, bounded, and
// free of '/' and control characters (NUL, newlines), since names appear in
// paths, log lines and CNI arguments.
func Name(field, v string) error {
	switch {
	case v == "":
		return invalid("%s: required", field)
	case len(v) > MaxName:
		return invalid("%s: %d bytes, more than %d", field, len(v), MaxName)
	case strings.ContainsRune(v, '/'):
		return invalid("%s %q: must not contain '/'", field, v)
	case strings.ContainsFunc(v, unicode.IsControl):
		return invalid("%s %q: must not contain control characters", field, v)
	}
	return nil
}

// Metadata checks the total size of labels and annotations; field is the
// config's path ("config").
func Metadata(field string, labels, annotations map[string]string) error {
	n := size(labels) + size(annotations)
	if n > MaxMetadata {
		return invalid("%s.labels and %s.annotations: %d bytes in all, more than %d", field, field, n, MaxMetadata)
	}
	return nil
}

// EnvSize checks the total size of an environment given as key/value pairs.
func EnvSize(field string, n int) error {
	if n > MaxEnv {
		return invalid("%s: %d bytes in all, more than %d", field, n, MaxEnv)
	}
	return nil
}

func size(m map[string]string) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

func invalid(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, errdefs.ErrInvalidArgument)...)
}
