package config

import (
	"fmt"
	"net/url"
	"time"
)

// The value types below check themselves while decoding, so that a bad value is
// reported by the TOML decoder with its key and line.

// CgroupDriver is "", "cgroupfs" or "systemd"; "" means detect. It is a struct,
// not a string type, because the TOML decoder assigns string kinds directly
// without calling UnmarshalText.
type CgroupDriver struct{ name string }

// Cgroup drivers.
var (
	CgroupDriverDetect   = CgroupDriver{}
	CgroupDriverCgroupfs = CgroupDriver{"cgroupfs"}
	CgroupDriverSystemd  = CgroupDriver{"systemd"}
)

// String returns the driver's name ("" for detect).
func (d CgroupDriver) String() string { return d.name }

// UnmarshalText accepts only the known drivers.
func (d *CgroupDriver) UnmarshalText(b []byte) error {
	for _, v := range []CgroupDriver{CgroupDriverDetect, CgroupDriverCgroupfs, CgroupDriverSystemd} {
		if v.name == string(b) {
			*d = v
			return nil
		}
	}
	return fmt.Errorf("cgroup driver %q: want \"cgroupfs\", \"systemd\" or \"\" (detect)", b)
}

// MarshalText writes the driver's name.
func (d CgroupDriver) MarshalText() ([]byte, error) { return []byte(d.name), nil }

// Duration is a time.Duration written as "30s", "1m", "4h".
type Duration time.Duration

// UnmarshalText parses a positive Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	if v <= 0 {
		return fmt.Errorf("duration %q: must be positive", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration back in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Std returns the time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// URL is an absolute http or https URL, e.g. a registry mirror. A struct for
// the same reason as CgroupDriver.
type URL struct{ s string }

// String returns the URL as written.
func (u URL) String() string { return u.s }

// UnmarshalText accepts http:// and https:// URLs with a host.
func (u *URL) UnmarshalText(b []byte) error {
	v, err := ParseURL(string(b))
	if err != nil {
		return err
	}
	*u = v
	return nil
}

// MarshalText writes the URL.
func (u URL) MarshalText() ([]byte, error) { return []byte(u.s), nil }

// ParseURL checks s is an http(s) URL with a host.
func ParseURL(s string) (URL, error) {
	p, err := url.Parse(s)
	if err != nil {
		return URL{}, fmt.Errorf("url %q: %w", s, err)
	}
	if p.Scheme != "http" && p.Scheme != "https" {
		return URL{}, fmt.Errorf("url %q: scheme must be http or https", s)
	}
	if p.Host == "" {
		return URL{}, fmt.Errorf("url %q: no host", s)
	}
	return URL{s}, nil
}
