package cni

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/fsnotify/fsnotify"
)

// Manager holds the pod network: the first valid conflist (by file name) of the
// conf dir, reloaded whenever the directory changes, so that readiness is
// answered from memory.
type Manager struct {
	confDir string
	binDirs []string
	cni     *libcni.CNIConfig
	timeout time.Duration // of one ADD or DEL

	mu      sync.RWMutex
	network *libcni.NetworkConfigList // nil while no valid conflist exists
	file    string
	reason  error // why network is nil

	watcher *fsnotify.Watcher
}

// Option configures a Manager.
type Option func(*Manager)

// WithTimeout bounds each ADD and DEL (DefaultTimeout otherwise); a plugin
// still running then is killed with the processes it started.
func WithTimeout(d time.Duration) Option {
	return func(m *Manager) {
		if d > 0 {
			m.timeout = d
		}
	}
}

// NewManager loads the conf dir and watches it for changes until Close. A
// missing conf dir is watched from its parent so that creating it later works.
// cacheDir keeps libcni's per-attachment results and configs for DEL; it must
// persist across reboots.
func NewManager(confDir string, binDirs []string, cacheDir string, opts ...Option) (*Manager, error) {
	m := &Manager{
		confDir: confDir,
		binDirs: binDirs,
		cni:     libcni.NewCNIConfigWithCacheDir(binDirs, cacheDir, &pluginExec{}),
		timeout: DefaultTimeout,
	}
	for _, o := range opts {
		o(m)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch CNI conf dir: %w", err)
	}
	m.watcher = w
	m.rewatch()
	m.reload()
	go m.watch()
	return m, nil
}

// Close stops watching the conf dir.
func (m *Manager) Close() error { return m.watcher.Close() }

// Ready reports whether a usable pod network exists and, if not, why.
func (m *Manager) Ready() (bool, string) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.network == nil {
		return false, m.reason.Error()
	}
	return true, ""
}

// Network returns the default network and the file it came from.
func (m *Manager) Network() (*libcni.NetworkConfigList, string, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.network == nil {
		return nil, "", m.reason
	}
	return m.network, m.file, nil
}

// rewatch watches the conf dir, or its parent while the conf dir is absent.
func (m *Manager) rewatch() {
	for _, p := range m.watcher.WatchList() {
		_ = m.watcher.Remove(p)
	}
	if err := m.watcher.Add(m.confDir); err != nil {
		_ = m.watcher.Add(filepath.Dir(m.confDir))
	}
}

func (m *Manager) watch() {
	for {
		select {
		case ev, ok := <-m.watcher.Events:
			if !ok {
				return
			}
			if ev.Name == m.confDir {
				m.rewatch()
			}
			m.reload()
		case _, ok := <-m.watcher.Errors:
			if !ok {
				return
			}
		}
	}
}

func (m *Manager) reload() {
	network, file, err := loadDefault(m.confDir, m.binDirs)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.network, m.file, m.reason = network, file, err
}

// loadDefault returns the first conflist in dir, by file name, that parses and
// whose plugins are all installed. Files that fail are skipped, as kubelet's
// other runtimes do, and named in the error when none is usable.
func loadDefault(dir string, binDirs []string) (*libcni.NetworkConfigList, string, error) {
	files, err := libcni.ConfFiles(dir, []string{".conflist", ".conf", ".json"})
	if err != nil {
		return nil, "", fmt.Errorf("cni config uninitialized: read %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, "", fmt.Errorf("cni config uninitialized: no network config found in %s", dir)
	}
	var errs []error
	for _, f := range files {
		list, err := loadFile(f)
		if err == nil {
			err = checkPlugins(list, binDirs)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", filepath.Base(f), err))
			continue
		}
		return list, f, nil
	}
	return nil, "", fmt.Errorf("cni config uninitialized: no valid network config in %s: %w", dir, errors.Join(errs...))
}

// loadFile accepts a conflist, or a single plugin .conf wrapped into a list.
func loadFile(path string) (*libcni.NetworkConfigList, error) {
	if filepath.Ext(path) == ".conflist" {
		return libcni.ConfListFromFile(path)
	}
	conf, err := libcni.ConfFromFile(path)
	if err != nil {
		return nil, err
	}
	if conf.Network.Type == "" {
		return nil, errors.New("no plugin type")
	}
	return libcni.ConfListFromConf(conf)
}

func checkPlugins(list *libcni.NetworkConfigList, binDirs []string) error {
	if list.Name == "" {
		return errors.New("network has no name")
	}
	for _, p := range list.Plugins {
		if p.Network.Type == "" {
			return errors.New("a plugin has no type")
		}
		if !pluginInstalled(p.Network.Type, binDirs) {
			return fmt.Errorf("plugin %q not found in %v", p.Network.Type, binDirs)
		}
	}
	return nil
}

func pluginInstalled(name string, binDirs []string) bool {
	for _, d := range binDirs {
		if fi, err := os.Stat(filepath.Join(d, name)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return true
		}
	}
	return false
}
