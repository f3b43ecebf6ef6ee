package testregistry

import (
	"archive/tar"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// wantConfigs is what critest (and its benchmark) expects of each image's
// config: the keys are every reference it pulls.
var wantConfigs = map[string]v1.Config{
	e2e + "busybox:1.29-2":                            {Cmd: []string{"sh"}},
	"docker.io/library/busybox:1.37.0":                {Cmd: []string{"sh"}},
	"docker.io/library/busybox:latest":                {Cmd: []string{"sh"}},
	e2e + "nginx:1.14-2":                              {Cmd: []string{"nginx-foreground"}, StopSignal: "SIGTERM"},
	staging + "hostnet-nginx-amd64:latest":            {Cmd: []string{"nginx-foreground"}, StopSignal: "SIGQUIT"},
	e2e + "httpd:2.4.39-4":                            {Cmd: []string{"httpd-foreground"}, WorkingDir: "/usr/local/apache2", StopSignal: "SIGWINCH"},
	e2e + "nonewprivs:1.3":                            {Entrypoint: []string{"/usr/local/bin/nnp"}, User: "1000"},
	staging + "test-image-user-uid:latest":            {Cmd: []string{"sh"}, User: "1002"},
	staging + "test-image-user-username:latest":       {Cmd: []string{"sh"}, User: "www-data"},
	staging + "test-image-user-uid-group:latest":      {Cmd: []string{"sh"}, User: "1003:1004"},
	staging + "test-image-user-username-group:latest": {Cmd: []string{"sh"}, User: "www-data:1004"},
	staging + "test-image-predefined-group:latest":    {Cmd: []string{"sh"}, User: "1000"},
	staging + "test-image-latest:latest":              {Cmd: []string{"sh"}},
	staging + "test-image-1:latest":                   {Cmd: []string{"sh"}},
	staging + "test-image-2:latest":                   {Cmd: []string{"sh"}},
	staging + "test-image-3:latest":                   {Cmd: []string{"sh"}},
	staging + "test-image-tags:1":                     {Cmd: []string{"sh"}},
	staging + "test-image-tags:2":                     {Cmd: []string{"sh"}},
	staging + "test-image-tags:3":                     {Cmd: []string{"sh"}},
	staging + "test-image-tag:test":                   {Cmd: []string{"sh"}},
	staging + "test-image-tag:all":                    {Cmd: []string{"sh"}},
	staging + "test-image-digest:latest":              {Cmd: []string{"sh"}},
	"registry.k8s.io/pause:3.9":                       {Entrypoint: []string{"/pause"}, WorkingDir: "/", User: "65535:65535"},
	"k8s.gcr.io/pause:3.9":                            {Entrypoint: []string{"/pause"}, WorkingDir: "/", User: "65535:65535"},
	"registry.k8s.io/pause:3.10":                      {Entrypoint: []string{"/pause"}, WorkingDir: "/", User: "65535:65535"},
	ecr + "1.35.0-glibc":                              {Cmd: []string{"sh"}},
	ecr + "1-uclibc":                                  {Cmd: []string{"sh"}},
	ecr + "1":                                         {Cmd: []string{"sh"}},
	ecr + "1-glibc":                                   {Cmd: []string{"sh"}},
	ecr + "1-musl":                                    {Cmd: []string{"sh"}},
}

// busyboxFiles is what critest runs or reads in its default image.
var busyboxFiles = map[string]wantFile{
	"tmp":                            {typ: tar.TypeDir, mode: 0o1777},
	"root":                           {typ: tar.TypeDir, mode: 0o700},
	"bin/busybox":                    {typ: tar.TypeReg, mode: 0o755},
	"bin/sh":                         {contains: "bin/busybox"}, // hard links: see busyboxTree
	"bin/ls":                         {contains: "bin/busybox"},
	"bin/top":                        {contains: "bin/busybox"},
	"bin/ping":                       {contains: "bin/busybox"},
	"bin/brctl":                      {contains: "bin/busybox"},
	"bin/netstat":                    {contains: "bin/busybox"},
	"bin/mount":                      {contains: "bin/busybox"},
	"bin/id":                         {contains: "bin/busybox"},
	"usr/bin/ipcs":                   {typ: tar.TypeReg, mode: 0o755},
	"usr/bin/pgrep":                  {contains: "/proc/[0-9]*"},
	"lib64/ld-linux-x86-64.so.2":     {},
	"lib/x86_64-linux-gnu/libc.so.6": {},
	"var/run":                        {typ: tar.TypeSymlink, mode: 0o777, contains: "../run"},
	"etc/passwd":                     {contains: "www-data:x:33:33:"},
	"etc/group":                      {contains: "nogroup:x:65534:"},
}

// wantFiles lists, per reference, files that must be in the image.
var wantFiles = map[string]map[string]wantFile{
	e2e + "busybox:1.29-2": busyboxFiles,
	e2e + "nginx:1.14-2": {
		"usr/sbin/nginx":                 {typ: tar.TypeSymlink, mode: 0o777, contains: "/bin/busybox"},
		"usr/local/bin/nginx-foreground": {contains: "-p 80 "},
	},
	staging + "hostnet-nginx-amd64:latest": {"usr/local/bin/nginx-foreground": {contains: "-p 12003 "}},
	e2e + "httpd:2.4.39-4":                 {"usr/local/bin/httpd-foreground": {contains: "httpd"}},
	e2e + "nonewprivs:1.3":                 {"usr/local/bin/nnp": {typ: tar.TypeReg, mode: 0o4755}},
	staging + "test-image-predefined-group:latest": {
		"etc/passwd": {contains: "default-user:x:1000:1000:"},
		"etc/group":  {contains: "group-defined-in-image:x:50000:default-user"},
	},
	staging + "test-image-1:latest": {"test-image-1": {}},
	staging + "test-image-2:latest": {"test-image-2": {}},
	staging + "test-image-3:latest": {"test-image-3": {}},
	"registry.k8s.io/pause:3.10":    {"pause": {typ: tar.TypeReg, mode: 0o755}},
}
