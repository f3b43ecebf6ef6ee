package spec

import (
	"slices"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The table of https://kubernetes.io/docs/tasks/inject-data-application/define-command-argument-container/#notes
// plus Docker's empty-entrypoint rule.
func TestProcessArgs(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"foo", "bar"}}
	for _, tc := range []struct {
		name          string
		command, args []string
		image         ocispec.ImageConfig
		want          []string
		err           string
	}{
		{name: "image only", image: img, want: []string{"/ep", "foo", "bar"}},
		{name: "command drops image cmd", command: []string{"/cmd"}, image: img, want: []string{"/cmd"}},
		{name: "args replace cmd", args: []string{"zoo"}, image: img, want: []string{"/ep", "zoo"}},
		{name: "both", command: []string{"/cmd"}, args: []string{"zoo"}, image: img, want: []string{"/cmd", "zoo"}},
		{name: "cmd without entrypoint", image: ocispec.ImageConfig{Cmd: []string{"sh"}}, want: []string{"sh"}},
		{name: "empty entrypoint is none", image: ocispec.ImageConfig{Entrypoint: []string{""}, Cmd: []string{"sh"}}, want: []string{"sh"}},
		{name: "args without image", args: []string{"/bin/true"}, want: []string{"/bin/true"}},
		{name: "nothing", err: "command: no command specified"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ProcessArgs(tc.command, tc.args, tc.image)
			wantErr(t, err, tc.err)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestProcessArgsDoesNotAliasImage(t *testing.T) {
	img := ocispec.ImageConfig{Entrypoint: []string{"/ep"}, Cmd: []string{"a"}}
	got, _ := ProcessArgs(nil, nil, img)
	got[0] = "changed"
	if img.Entrypoint[0] != "/ep" {
		t.Fatal("ProcessArgs returned the image's own slice")
	}
}

func TestWorkingDir(t *testing.T) {
	for _, tc := range []struct{ config, image, want, err string }{
		{want: "/"},
		{image: "/srv", want: "/srv"},
		{config: "/app/", image: "/srv", want: "/app"},
		{config: "rel", err: "working_dir"},
		{image: "rel", err: "image config WorkingDir"},
	} {
		got, err := workingDir(tc.config, tc.image)
		wantErr(t, err, tc.err)
		if got != tc.want {
			t.Errorf("workingDir(%q, %q) = %q, want %q", tc.config, tc.image, got, tc.want)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	for _, tc := range []struct {
		name      string
		base, add []string
		want      []string
	}{
		{"append", []string{"A=1"}, []string{"B=2"}, []string{"A=1", "B=2"}},
		{"replace in place", []string{"A=1", "B=2"}, []string{"A=3"}, []string{"A=3", "B=2"}},
		{"later wins", nil, []string{"A=1", "A=2"}, []string{"A=2"}},
		{"unset", []string{"A=1", "B=2"}, []string{"A"}, []string{"B=2"}},
		{"unset unknown", []string{"A=1"}, []string{"Z"}, []string{"A=1"}},
		{"empty value kept", nil, []string{"A="}, []string{"A="}},
		{"value with =", nil, []string{"A=b=c"}, []string{"A=b=c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := mergeEnv(tc.base, tc.add...); !slices.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestContainerEnv(t *testing.T) {
	in := baseInput(t)
	in.Image.Env = []string{"PATH=/img", "A=img"}
	in.Config.Envs = []*runtimeapi.KeyValue{{Key: "A", Value: []byte("cfg")}, {Key: "B", Value: []byte("x y")}}
	r, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PATH=/img", "HOSTNAME=pod", "A=cfg", "B=x y", "HOME=/root"}
	if got := r.Spec.Process.Env; !slices.Equal(got, want) {
		t.Fatalf("env %q, want %q", got, want)
	}

	for _, bad := range []string{"", "A=B", "A\x00"} {
		in.Config.Envs = []*runtimeapi.KeyValue{{Key: "ok"}, {Key: bad}}
		_, err := Build(in)
		wantErr(t, err, "envs[1]")
	}
}

func TestDefaultHome(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		home string
		want string
	}{
		{nil, "/home/app", "HOME=/home/app"},
		{nil, "", "HOME=/"},
		{[]string{"HOME=/x"}, "/home/app", "HOME=/x"},
	} {
		s := DefaultSpec()
		s.Process.Env = tc.env
		if err := WithDefaultHome(tc.home)(s); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(s.Process.Env, tc.want) {
			t.Errorf("env %q lacks %q", s.Process.Env, tc.want)
		}
	}
}

func TestOOMScoreAdj(t *testing.T) {
	for _, tc := range []struct{ adj, floor, want int }{
		{-997, 0, 0},
		{-997, -1000, -997},
		{500, 0, 500},
		{-2000, -1000, -1000},
		{2000, 0, 1000},
		{10, 100, 100},
	} {
		s := DefaultSpec()
		_ = WithOOMScoreAdj(tc.adj, tc.floor)(s)
		if *s.Process.OOMScoreAdj != tc.want {
			t.Errorf("WithOOMScoreAdj(%d, %d) = %d, want %d", tc.adj, tc.floor, *s.Process.OOMScoreAdj, tc.want)
		}
	}
}

func TestNofileLimit(t *testing.T) {
	for _, tc := range []struct{ limit, want uint64 }{{0, 1048576}, {20000, 20000}, {1 << 30, 1048576}} {
		s := DefaultSpec()
		_ = WithNofileLimit(tc.limit)(s)
		want := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: tc.want, Soft: tc.want}}
		if !slices.Equal(s.Process.Rlimits, want) {
			t.Errorf("limit %d: rlimits %v, want %v", tc.limit, s.Process.Rlimits, want)
		}
	}
}
