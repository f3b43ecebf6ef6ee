// Command probe runs inside a container built by the spec package's runc
// test and reports, as JSON, what the container can see and do.
package main

import (
	"encoding/json"
	"os"
	"strings"
	"syscall"
)

func main() {
	out := map[string]any{"uid": os.Getuid(), "gid": os.Getgid()}
	groups, _ := os.Getgroups()
	out["groups"] = groups
	status, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(status), "\n") {
		if k, v, ok := strings.Cut(l, ":\t"); ok && (k == "CapEff" || k == "CapBnd" || k == "NoNewPrivs" || k == "Seccomp") {
			out[k] = strings.TrimSpace(v)
		}
	}
	out["home"] = os.Getenv("HOME")
	out["hostname"], _ = os.Hostname()
	// A masked file is /dev/null bound over it: a char device.
	timerList, err := os.Stat("/proc/timer_list")
	out["timer_list_masked"] = err == nil && timerList.Mode()&os.ModeCharDevice != 0
	out["rootfs_write"] = errString(os.WriteFile("/written", nil, 0o644))
	out["mkdir"] = errString(syscall.Mkdir("/tmp/probe-dir", 0o755))
	out["proc_sys_write"] = errString(os.WriteFile("/proc/sys/kernel/domainname", []byte("x"), 0))
	b, _ := os.ReadFile("/etc/hosts")
	out["hosts"] = string(b)
	json.NewEncoder(os.Stdout).Encode(out)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
