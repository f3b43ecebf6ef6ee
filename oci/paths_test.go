package oci

import (
	"strings"
	"syscall"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestCgroupsPath(t *testing.T) {
	cases := []struct{ parent, driver, want string }{
		{"/kubepods/burstable/pod123", "cgroupfs", "/kubepods/burstable/pod123/abc"},
		{"", "cgroupfs", "/nodeagent/abc"},
		{"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice", "systemd", "kubepods-burstable-pod123.slice:nodeagent:abc"},
		{"kubepods-pod1.slice", "systemd", "kubepods-pod1.slice:nodeagent:abc"},
		{"", "systemd", "system.slice:nodeagent:abc"},
	}
	for _, tc := range cases {
		if got := CgroupsPath(tc.parent, "abc", tc.driver); got != tc.want {
			t.Errorf("CgroupsPath(%q, %s) = %q, want %q", tc.parent, tc.driver, got, tc.want)
		}
	}
}

func TestLogPath(t *testing.T) {
	cases := []struct{ dir, rel, want, err string }{
		{"/var/log/pods/ns_p_u", "c/0.log", "/var/log/pods/ns_p_u/c/0.log", ""},
		{"/var/log/pods/ns_p_u", "", "", ""},
		{"", "c/0.log", "", ""},
		{"", "/etc/passwd", "", "no log_directory"},
		{"/var/log/pods/x", "../../../etc/shadow", "", "escapes"},
		{"/var/log/pods/x", "..", "", "escapes"},
		{"relative", "c.log", "", "not an absolute"},
	}
	for _, tc := range cases {
		got, err := LogPath(tc.dir, tc.rel)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("LogPath(%q, %q) err = %v, want %q", tc.dir, tc.rel, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("LogPath(%q, %q) = %q, %v; want %q", tc.dir, tc.rel, got, err, tc.want)
		}
	}
}

func TestStopSignal(t *testing.T) {
	cases := []struct {
		cfg   runtimeapi.Signal
		image string
		want  syscall.Signal
		err   bool
	}{
		{runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "", syscall.SIGTERM, false},
		{runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "SIGQUIT", syscall.SIGQUIT, false},
		{runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "WINCH", syscall.SIGWINCH, false},
		{runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "9", syscall.SIGKILL, false},
		{runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "SIGBOGUS", 0, true},
		{runtimeapi.Signal_SIGNAL_RUNTIME_DEFAULT, "99", 0, true},
		{runtimeapi.Signal_SIGNAL_SIGUSR1, "SIGQUIT", syscall.SIGUSR1, false},
	}
	for _, tc := range cases {
		got, err := StopSignal(tc.cfg, tc.image)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("StopSignal(%v, %q) = %v, %v", tc.cfg, tc.image, got, err)
		}
	}
}
