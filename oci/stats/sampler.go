package stats

import (
	"context"
	"sync"
	"time"
)

// DefaultInterval is how often a Sampler reads tracked cgroups when NewSampler
// is given no interval. 10s is cAdvisor's housekeeping interval, so the rate
// covers the same window as when kubelet took usage_nano_cores from cAdvisor,
// and it is shorter than metrics-server's default 15s resolution, so every
// scrape sees a rate no older than one interval. The cost is one Read (about
// 30 small cgroupfs reads, ~0.2-0.3ms on the v1 test VM) per container per
// interval: ~25ms of CPU per 10s for 100 containers (0.25% of a core).
const DefaultInterval = 10 * time.Second

// DefaultDirInterval is how often tracked directories are walked. It is
// cAdvisor's period for container filesystem usage: a walk costs in
// proportion to the files a container wrote, so it runs far less often than
// the cgroup reads.
const DefaultDirInterval = time.Minute

// Sampler keeps, in memory, what an RPC cannot or should not read itself:
// the CPU rate of each tracked cgroup between its last two samples, the last
// sample, and the disk usage of tracked directories. Run drives it; every
// other method is cheap and safe for concurrent use.
//
// Staleness: a Sample or rate is at most Interval old (plus one pass over
// all tracked cgroups); a directory usage at most DirInterval plus one pass
// of walks. Each pass is scheduled a full interval after the previous one
// ends, so a slow pass stretches the period instead of running back to back.
// A newly tracked cgroup or directory is read at once (not at the next tick),
// so its first sample or usage is there within one pass; a rate needs two
// samples, so it appears within one Interval after Track.
type Sampler struct {
	r           *Reader
	interval    time.Duration
	dirInterval time.Duration
	kickCgroups chan struct{}
	kickDirs    chan struct{}

	mu      sync.Mutex
	cgroups map[string]*cgroupState
	dirs    map[string]*dirState
}

type cgroupState struct {
	path      string
	sampled   bool // last holds a good sample
	last      Sample
	rate      bool // nanoCores holds a rate between two good samples
	nanoCores uint64
}

type dirState struct {
	dir           string
	walked        bool // a walk was attempted
	ok            bool // bytes and inodes are from a walk that succeeded
	bytes, inodes uint64
}

// Option configures a Sampler.
type Option func(*Sampler)

// WithDirInterval sets how often tracked directories are walked
// (DefaultDirInterval when d <= 0).
func WithDirInterval(d time.Duration) Option {
	return func(s *Sampler) {
		if d > 0 {
			s.dirInterval = d
		}
	}
}

// NewSampler returns a Sampler reading cgroups with r every interval
// (DefaultInterval when interval <= 0). Nothing happens until Run.
func NewSampler(r *Reader, interval time.Duration, opts ...Option) *Sampler {
	if interval <= 0 {
		interval = DefaultInterval
	}
	s := &Sampler{
		r:           r,
		interval:    interval,
		dirInterval: DefaultDirInterval,
		kickCgroups: make(chan struct{}, 1),
		kickDirs:    make(chan struct{}, 1),
		cgroups:     map[string]*cgroupState{},
		dirs:        map[string]*dirState{},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Track samples the cgroup at cgroupsPath (as in the OCI spec) under id from
// now on. Tracking an id again with another path starts it over.
func (s *Sampler) Track(id, cgroupsPath string) {
	s.mu.Lock()
	if st, ok := s.cgroups[id]; !ok || st.path != cgroupsPath {
		s.cgroups[id] = &cgroupState{path: cgroupsPath}
	}
	s.mu.Unlock()
	kick(s.kickCgroups)
}

// TrackDir measures dir (a container's writable layer) under id from now on.
func (s *Sampler) TrackDir(id, dir string) {
	s.mu.Lock()
	if st, ok := s.dirs[id]; !ok || st.dir != dir {
		s.dirs[id] = &dirState{dir: dir}
	}
	s.mu.Unlock()
	kick(s.kickDirs)
}

// Untrack forgets id: its cgroup and its directory. Unknown ids are ignored.
func (s *Sampler) Untrack(id string) {
	s.mu.Lock()
	delete(s.cgroups, id)
	delete(s.dirs, id)
	s.mu.Unlock()
}

// NanoCores is the CPU rate of id in nanocores (1e9 = one core busy) between
// its last two samples. ok is false until two samples in a row succeeded,
// and again after a failed read (e.g. the cgroup is gone).
func (s *Sampler) NanoCores(id string) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.cgroups[id]
	if !ok || !st.rate {
		return 0, false
	}
	return st.nanoCores, true
}

// Latest is the last sample of id, false if there is none or the last read
// failed.
func (s *Sampler) Latest(id string) (Sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, ok := s.cgroups[id]
	if !ok || !st.sampled {
		return Sample{}, false
	}
	return st.last, true
}

// ReadNow reads id's cgroup at once and keeps the result as its latest
// sample: for a request that finds no sample yet (a cgroup tracked, or made
// by a start, since the last pass), so that the requests after it are
// answered from memory again. false if id is not tracked or the read fails.
func (s *Sampler) ReadNow(id string) (Sample, bool) {
	s.mu.Lock()
	st, ok := s.cgroups[id]
	s.mu.Unlock()
	if !ok {
		return Sample{}, false
	}
	smp, err := s.r.Read(st.path)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cgroups[id] == st {
		st.record(smp, err)
	}
	return smp, err == nil
}

// DirUsage is the disk usage (allocated bytes) and inode count of id's
// directory as of its last walk; false before the first walk succeeds or
// after one fails.
func (s *Sampler) DirUsage(id string) (bytes, inodes uint64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, found := s.dirs[id]
	if !found || !st.ok {
		return 0, 0, false
	}
	return st.bytes, st.inodes, true
}

// Run samples until ctx is done: cgroups every interval, directories every
// dir interval, each in its own goroutine so a slow walk never delays CPU
// samples.
func (s *Sampler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		loop(ctx, s.interval, s.kickCgroups, s.sampleCgroups)
	}()
	go func() {
		defer wg.Done()
		loop(ctx, s.dirInterval, s.kickDirs, s.walkDirs)
	}()
	wg.Wait()
}

// loop runs work(false) now and every interval after the previous pass
// ends, and work(true) (only what was never read) when kicked.
func loop(ctx context.Context, every time.Duration, kicked <-chan struct{}, work func(onlyNew bool)) {
	work(false)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-kicked:
			work(true)
		case <-t.C:
			work(false)
			t.Reset(every)
		}
	}
}

func kick(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default: // a kick is already pending; it will cover this one
	}
}

// sampleCgroups reads tracked cgroups without holding the lock, then records
// each result unless the id was untracked or re-tracked meanwhile.
func (s *Sampler) sampleCgroups(onlyNew bool) {
	type job struct {
		id string
		st *cgroupState
	}
	var jobs []job
	s.mu.Lock()
	for id, st := range s.cgroups {
		if !onlyNew || !st.sampled {
			jobs = append(jobs, job{id, st})
		}
	}
	s.mu.Unlock()
	for _, j := range jobs {
		smp, err := s.r.Read(j.st.path)
		s.mu.Lock()
		if s.cgroups[j.id] == j.st {
			j.st.record(smp, err)
		}
		s.mu.Unlock()
	}
}

func (st *cgroupState) record(smp Sample, err error) {
	if err != nil {
		// Serve nothing rather than a rate from before the failure.
		st.sampled, st.rate = false, false
		return
	}
	if st.sampled {
		st.nanoCores, st.rate = cpuRate(st.last, smp)
	}
	st.last, st.sampled = smp, true
}

// cpuRate is the CPU used between two samples, in nanocores. A counter that
// went backwards (the cgroup was recreated under the same path) or samples
// out of order give no rate.
func cpuRate(prev, cur Sample) (uint64, bool) {
	dt := cur.Timestamp.Sub(prev.Timestamp)
	if dt <= 0 || cur.CPUUsageNanos < prev.CPUUsageNanos {
		return 0, false
	}
	// float64: the product of a delta and 1e9 overflows uint64 past ~18s
	// of CPU time.
	return uint64(float64(cur.CPUUsageNanos-prev.CPUUsageNanos) / dt.Seconds()), true
}

func (s *Sampler) walkDirs(onlyNew bool) {
	type job struct {
		id string
		st *dirState
	}
	var jobs []job
	s.mu.Lock()
	for id, st := range s.dirs {
		if !onlyNew || !st.walked {
			jobs = append(jobs, job{id, st})
		}
	}
	s.mu.Unlock()
	for _, j := range jobs {
		b, n, err := diskUsage(j.st.dir)
		s.mu.Lock()
		if s.dirs[j.id] == j.st {
			j.st.walked, j.st.ok = true, err == nil
			j.st.bytes, j.st.inodes = b, n
		}
		s.mu.Unlock()
	}
}
