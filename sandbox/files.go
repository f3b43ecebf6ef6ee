package sandbox

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// shmSize is the size of a pod's /dev/shm, as containerd and docker default.
const shmSize = 64 << 20

// podHosts is /etc/hosts of a pod on its own network. kubelet manages the
// real one for most pods; this one makes localhost resolve for the others.
const podHosts = `127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
fe00::0	ip6-localnet
fe00::0	ip6-mcastprefix
fe00::1	ip6-allnodes
fe00::2	ip6-allrouters
`

// writeFiles creates the sandbox's hostname, hosts and resolv.conf files and
// mounts its /dev/shm.
func writeFiles(r Record) error {
	if err := os.MkdirAll(r.Dir, 0o711); err != nil {
		return fmt.Errorf("create sandbox dir: %w", err)
	}
	hostname, hosts, err := hostnameAndHosts(r.Config)
	if err != nil {
		return err
	}
	files := r.Files()
	if err := os.WriteFile(files.Hostname, []byte(hostname+"\n"), 0o644); err != nil {
		return fmt.Errorf("write hostname: %w", err)
	}
	if err := os.WriteFile(files.Hosts, hosts, 0o644); err != nil {
		return fmt.Errorf("write hosts: %w", err)
	}
	if files.Resolv != "" {
		resolv, err := resolvConf(r.Config)
		if err != nil {
			return err
		}
		if err := os.WriteFile(files.Resolv, resolv, 0o644); err != nil {
			return fmt.Errorf("write resolv.conf: %w", err)
		}
	}
	if !hostIPC(r.Config) {
		if err := mountShm(files.Shm); err != nil {
			return err
		}
	}
	return nil
}

func hostnameAndHosts(c *runtimeapi.PodSandboxConfig) (string, []byte, error) {
	if hostNetwork(c) {
		name, err := os.Hostname()
		if err != nil {
			return "", nil, fmt.Errorf("host name: %w", err)
		}
		hosts, err := os.ReadFile("/etc/hosts")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", nil, fmt.Errorf("read host /etc/hosts: %w", err)
		}
		return name, hosts, nil
	}
	return podHostname(c), []byte(podHosts), nil
}

// podHostname is the UTS hostname of a pod: the configured one, else the pod
// name, as kubelet expects.
func podHostname(c *runtimeapi.PodSandboxConfig) string {
	if c.GetHostname() != "" {
		return c.GetHostname()
	}
	name := c.GetMetadata().GetName()
	if len(name) > 63 {
		name = name[:63]
	}
	return name
}

// resolvConf renders DNSConfig; a pod on the host network without one gets
// the host's resolv.conf.
func resolvConf(c *runtimeapi.PodSandboxConfig) ([]byte, error) {
	d := c.GetDnsConfig()
	if d == nil {
		b, err := os.ReadFile("/etc/resolv.conf")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("read host resolv.conf: %w", err)
		}
		return b, nil
	}
	var b strings.Builder
	if len(d.Searches) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(d.Searches, " "))
	}
	for _, s := range d.Servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(d.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(d.Options, " "))
	}
	return []byte(b.String()), nil
}

func mountShm(path string) error {
	if err := os.MkdirAll(path, 0o1777); err != nil {
		return fmt.Errorf("create shm dir: %w", err)
	}
	opts := fmt.Sprintf("mode=1777,size=%d", shmSize)
	if err := unix.Mount("shm", path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mount /dev/shm tmpfs: %w", err)
	}
	return nil
}

// removeFiles unmounts /dev/shm and removes the sandbox dir. Already gone is
// success.
func removeFiles(dir string) error {
	shm := filepath.Join(dir, "shm")
	if err := unix.Unmount(shm, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", shm, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove sandbox dir: %w", err)
	}
	return nil
}
