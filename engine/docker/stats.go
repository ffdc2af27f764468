package docker

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
)

var _ engine.UsageReader = (*Runtime)(nil)

// Usage reads a container's CPU and memory counters once (Docker's one-shot
// stats: no second sample, no wait). Memory is what `docker stats` shows:
// the usage less the inactive page cache.
func (r *Runtime) Usage(ctx context.Context, id string) (engine.ContainerUsage, error) {
	res, err := r.cli.ContainerStats(ctx, id, client.ContainerStatsOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return engine.ContainerUsage{}, engine.ErrContainerNotFound
		}
		return engine.ContainerUsage{}, r.fail(err, "stats of container %s", shortID(id))
	}
	defer res.Body.Close()
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return engine.ContainerUsage{}, fmt.Errorf("stats of container %s: %w", shortID(id), err)
	}
	mem := s.MemoryStats.Usage
	for _, k := range []string{"inactive_file", "total_inactive_file"} {
		if v, ok := s.MemoryStats.Stats[k]; ok && v < mem {
			mem -= v
			break
		}
	}
	cpus := int(s.CPUStats.OnlineCPUs)
	if cpus == 0 {
		cpus = len(s.CPUStats.CPUUsage.PercpuUsage)
	}
	at := s.Read
	if at.IsZero() {
		at = time.Now()
	}
	return engine.ContainerUsage{
		CPUTotal:   s.CPUStats.CPUUsage.TotalUsage,
		SystemCPU:  s.CPUStats.SystemUsage,
		OnlineCPUs: cpus,
		Memory:     mem,
		MemLimit:   s.MemoryStats.Limit,
		At:         at,
	}, nil
}
