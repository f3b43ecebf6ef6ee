// Package nsutil is the only place in nodeagent that locks OS threads,
// unshares or enters namespaces. Every operation runs in a fresh goroutine on
// a locked thread; a thread whose namespaces could not be restored is never
// unlocked, so Go discards it instead of reusing it.
package nsutil

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// Type is a namespace kind as named under /proc/<pid>/ns.
type Type string

// Namespace kinds a pod sandbox pins.
const (
	Net Type = "net"
	IPC Type = "ipc"
	UTS Type = "uts"
	PID Type = "pid"
)

var cloneFlags = map[Type]int{Net: unix.CLONE_NEWNET, IPC: unix.CLONE_NEWIPC, UTS: unix.CLONE_NEWUTS}

// nsfsMagic is the statfs type of a namespace file (NSFS_MAGIC).
const nsfsMagic = 0x6e736673

// PinOptions describe the namespaces of a new sandbox.
type PinOptions struct {
	// Dir receives one pin file per namespace type, named after the type.
	Dir   string
	Types []Type
	// Hostname is set in the new UTS namespace (when UTS is among Types).
	Hostname string
	// Setup runs on the thread inside the new namespaces before they are
	// pinned, e.g. to write namespaced sysctls under /proc/sys.
	Setup func() error
}

// CreatePinned creates new namespaces of the given types and bind-mounts each
// onto Dir/<type>, so they outlive every process. On error nothing is left
// pinned.
func CreatePinned(o PinOptions) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("create namespace dir: %w", err)
	}
	flags := 0
	for _, t := range o.Types {
		flags |= cloneFlags[t]
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends up in the new namespaces and must die
		// with this goroutine rather than return to the scheduler.
		runtime.LockOSThread()
		errc <- pinOnThread(o, flags)
	}()
	if err := <-errc; err != nil {
		_ = Unpin(o.Dir)
		return err
	}
	return nil
}

func pinOnThread(o PinOptions, flags int) error {
	if err := unix.Unshare(flags); err != nil {
		return fmt.Errorf("unshare namespaces: %w", err)
	}
	if o.Hostname != "" && flags&unix.CLONE_NEWUTS != 0 {
		if err := unix.Sethostname([]byte(o.Hostname)); err != nil {
			return fmt.Errorf("set hostname %q: %w", o.Hostname, err)
		}
	}
	if flags&unix.CLONE_NEWNET != 0 {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if o.Setup != nil {
		if err := o.Setup(); err != nil {
			return err
		}
	}
	for _, t := range o.Types {
		if err := bindNamespace(fmt.Sprintf("/proc/thread-self/ns/%s", t), filepath.Join(o.Dir, string(t))); err != nil {
			return err
		}
	}
	return nil
}

// loopbackUp brings up lo in the current thread's network namespace, so a
// pod has localhost whether or not its CNI chain has the loopback plugin.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bring up lo: %w", err)
	}
	return nil
}

// PinFrom pins namespaces of a running process (e.g. a user-namespace helper).
func PinFrom(pid int, dir string, types []Type) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create namespace dir: %w", err)
	}
	// On failure only the pins made here go: dir may already hold the
	// pod's other namespaces, which its CNI DEL still needs.
	var made []string
	for _, t := range types {
		dst := filepath.Join(dir, string(t))
		if err := bindNamespace(fmt.Sprintf("/proc/%d/ns/%s", pid, t), dst); err != nil {
			for _, p := range made {
				_ = unpinOne(p)
			}
			return err
		}
		made = append(made, dst)
	}
	return nil
}

func bindNamespace(src, dst string) error {
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o400)
	if err != nil {
		return fmt.Errorf("create pin %s: %w", dst, err)
	}
	f.Close()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		os.Remove(dst) // ours (O_EXCL), and not a pin
		return fmt.Errorf("pin %s at %s: %w", src, dst, err)
	}
	return nil
}

// Unpin unmounts and removes every pin in dir, then dir itself. Already gone
// is success: Stop and Remove are retried by kubelet.
func Unpin(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read namespace dir: %w", err)
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, unpinOne(filepath.Join(dir, e.Name())))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// unpinOne unmounts and removes one pin; a plain file (a pin never
// mounted) or none is fine.
func unpinOne(p string) error {
	// Detach: a process may still hold the namespace open; the pin itself
	// must go regardless.
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount pin %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// IsPinned reports whether path is a live namespace pin. After a reboot a pin
// on a non-tmpfs /run is a plain empty file, which counts as gone.
func IsPinned(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == nsfsMagic
}

// Do runs fn on a thread inside the network namespace at path, then returns
// the thread to the daemon's namespace.
func Do(netnsPath string, fn func() error) error {
	target, err := os.Open(netnsPath)
	if err != nil {
		return fmt.Errorf("open netns: %w", err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		origin, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer origin.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter netns %s: %w", netnsPath, err)
			return
		}
		ferr := fn()
		// Unlock only when the thread is back home; otherwise it dies with
		// this goroutine.
		if err := unix.Setns(int(origin.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- ferr
	}()
	return <-errc
}
