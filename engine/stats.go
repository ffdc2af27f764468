package engine

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/clank-dev/clank/store"
)

// Live resource use of the ACTIVE containers (the dashboard's CPU and MEM).
// One sampler per engine, however many ask: Stats answers from a cache that
// the sampler refreshes every StatsInterval, and the sampler runs only while
// someone asked within StatsIdle, so an idle daemon reads nothing and fifty
// dashboards cost one round of Docker calls. CPU use is a rate: it takes two
// samples of a container's counters, so the sampler keeps each container's
// previous one (a container's first answer has memory and no CPU yet).
const (
	StatsInterval = 2500 * time.Millisecond
	StatsIdle     = 10 * time.Second
	// statsCallTimeout bounds one container's sample.
	statsCallTimeout = 2 * time.Second
	// statsParallel is how many containers are sampled at once.
	statsParallel = 4
)

// ContainerUsage is one reading of a container's counters.
type ContainerUsage struct {
	CPUTotal   uint64 // CPU time the container used in all, ns
	SystemCPU  uint64 // the host's CPU time in all, ns (0 if the engine does not say)
	OnlineCPUs int
	Memory     uint64 // bytes in use, the page cache left out
	MemLimit   uint64 // bytes it may use (the host's memory when unlimited)
	At         time.Time
}

// UsageReader is a Runtime that reads a container's counters (engine/docker
// does, with Docker's one-shot stats).
type UsageReader interface {
	Usage(ctx context.Context, id string) (ContainerUsage, error)
}

// ContainerStats is one ACTIVE container's use.
type ContainerStats struct {
	ContainerID string
	Slot        int
	// CPUPercent is of one CPU (200 = two CPUs busy); HasCPU is false until
	// the container has been read twice.
	CPUPercent float64
	HasCPU     bool
	Memory     uint64
	MemLimit   uint64
	At         time.Time
}

// ServiceStats is the use of a service's ACTIVE deployment, its containers
// summed.
type ServiceStats struct {
	Service      string
	DeploymentID string
	Number       int
	CPUPercent   float64
	HasCPU       bool // at least one container has a CPU rate
	Memory       uint64
	MemLimit     uint64
	Containers   []ContainerStats
}

type statsCache struct {
	mu       sync.Mutex
	asked    time.Time // the last Stats call
	running  bool
	first    chan struct{} // closed after the running sampler's first round
	services []ServiceStats
	prev     map[string]ContainerUsage // container id -> its last reading
	rounds   int                       // rounds sampled (tests)
}

// Stats is the use of every service's ACTIVE containers, as last sampled.
// The first call after an idle spell starts the sampler and waits (within
// ctx) for its first round. Nothing on a runtime that cannot read usage
// (Swarm's tasks run on other nodes).
func (e *Engine) Stats(ctx context.Context) ([]ServiceStats, error) {
	r, ok := e.opts.Runtime.(UsageReader) // e.rt wraps it (keptlogs)
	if !ok || e.swarm != nil {
		return []ServiceStats{}, nil
	}
	c := &e.stats
	c.mu.Lock()
	c.asked = time.Now()
	first := c.first
	if !c.running {
		first = make(chan struct{})
		c.first, c.running = first, true
		if !e.go_(func(ctx context.Context) { e.sampleStats(ctx, r, first) }) {
			c.running = false
			c.mu.Unlock()
			return []ServiceStats{}, nil
		}
	}
	c.mu.Unlock()
	select {
	case <-first:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.services)
	for i := range out {
		out[i].Containers = slices.Clone(out[i].Containers)
	}
	return out, nil
}

// StatsRounds is how many rounds the sampler has taken since the engine
// started: a test's measure of "idle costs nothing".
func (e *Engine) StatsRounds() int {
	e.stats.mu.Lock()
	defer e.stats.mu.Unlock()
	return e.stats.rounds
}

// sampleStats samples every StatsInterval until no one asked within
// StatsIdle (or the engine closes); then the cache and the previous
// readings go, so that the next start reports nothing stale.
func (e *Engine) sampleStats(ctx context.Context, r UsageReader, first chan struct{}) {
	c := &e.stats
	t := time.NewTicker(StatsInterval)
	defer t.Stop()
	for {
		e.sampleRound(ctx, r)
		c.mu.Lock()
		c.rounds++
		select {
		case <-first:
		default:
			close(first)
		}
		c.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		c.mu.Lock()
		if ctx.Err() != nil || time.Since(c.asked) > StatsIdle {
			c.running, c.services, c.prev = false, nil, nil
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
	}
}

// sampleRound reads every ACTIVE container once and puts the results in
// the cache.
func (e *Engine) sampleRound(ctx context.Context, r UsageReader) {
	active, err := e.store.ListDeploymentsByStatus(ctx, store.StatusActive)
	if err != nil {
		return // the cache stays as it was
	}
	type job struct {
		svc, slot int
		id        string
	}
	out := make([]ServiceStats, len(active))
	var jobs []job
	for i, d := range active {
		out[i] = ServiceStats{Service: d.Service, DeploymentID: d.ID, Number: d.Number}
		for _, rep := range d.Containers {
			if rep.ContainerID != "" {
				jobs = append(jobs, job{svc: i, slot: rep.Slot, id: rep.ContainerID})
			}
		}
	}
	readings := make([]ContainerUsage, len(jobs))
	ok := make([]bool, len(jobs))
	var wg sync.WaitGroup
	sem := make(chan struct{}, statsParallel)
	for k, j := range jobs {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, statsCallTimeout)
			defer cancel()
			u, err := r.Usage(cctx, j.id)
			readings[k], ok[k] = u, err == nil
		})
	}
	wg.Wait()

	c := &e.stats
	c.mu.Lock()
	defer c.mu.Unlock()
	prev := make(map[string]ContainerUsage, len(jobs))
	for k, j := range jobs {
		if !ok[k] {
			// Gone or not answering: left out this round. A slow one keeps
			// its last reading, so that its next answer has a CPU figure.
			if p, seen := c.prev[j.id]; seen {
				prev[j.id] = p
			}
			continue
		}
		u := readings[k]
		cs := ContainerStats{ContainerID: j.id, Slot: j.slot, Memory: u.Memory, MemLimit: u.MemLimit, At: u.At}
		if p, seen := c.prev[j.id]; seen {
			cs.CPUPercent, cs.HasCPU = cpuPercent(p, u)
		}
		prev[j.id] = u
		s := &out[j.svc]
		s.Containers = append(s.Containers, cs)
		s.Memory += cs.Memory
		s.MemLimit += cs.MemLimit
		if cs.HasCPU {
			s.CPUPercent += cs.CPUPercent
			s.HasCPU = true
		}
	}
	slices.SortFunc(out, func(a, b ServiceStats) int {
		if a.Service < b.Service {
			return -1
		}
		if a.Service > b.Service {
			return 1
		}
		return 0
	})
	c.services, c.prev = out, prev
}

// cpuPercent is the CPU a container used between two readings, in percent
// of one CPU: as `docker stats` computes it (its share of the host's CPU
// time, times the CPUs), or by the wall clock when the engine gives no host
// CPU time.
func cpuPercent(p, u ContainerUsage) (float64, bool) {
	if u.CPUTotal < p.CPUTotal {
		return 0, false // the counters restarted (a new container under the same id cannot be; be safe)
	}
	used := float64(u.CPUTotal - p.CPUTotal)
	if u.SystemCPU > p.SystemCPU && u.OnlineCPUs > 0 {
		return used / float64(u.SystemCPU-p.SystemCPU) * float64(u.OnlineCPUs) * 100, true
	}
	if wall := u.At.Sub(p.At); wall > 0 {
		return used / float64(wall.Nanoseconds()) * 100, true
	}
	return 0, false
}
