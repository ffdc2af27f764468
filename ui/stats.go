package ui

import (
	"fmt"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/clank-dev/clank/api"
)

// Live CPU and memory of the ACTIVE containers: the daemon samples them (one
// sampler for every dashboard, local and over SSH: engine/stats.go), and the
// dashboard reads its cache every statsPoll while the services list or a
// deployment's detail is on screen. Nothing on screen that shows them, no
// read: an idle daemon's sampler stops.

const (
	statsPoll = 2500 * time.Millisecond
	// statsRetry is the wait after a failed read (a daemon without
	// /v1/stats, or one that is down).
	statsRetry = 10 * time.Second
)

type (
	statsMsg struct {
		stats []api.ServiceStats
		err   error
	}
	statsTickMsg struct{}
)

// loadStats reads the daemon's last sample.
func (m *Model) loadStats() tea.Cmd {
	ctx, b := m.c.ctx, m.c.backend
	return func() tea.Msg {
		s, err := b.Stats(ctx)
		return statsMsg{stats: s, err: err}
	}
}

// applyStats keeps a sample and waits for the next read.
func (m *Model) applyStats(msg statsMsg) tea.Cmd {
	wait := statsPoll
	if msg.err != nil {
		wait = statsRetry
	} else {
		stats := make(map[string]api.ServiceStats, len(msg.stats))
		for _, s := range msg.stats {
			stats[s.Service] = s
		}
		m.c.stats = stats
		if m.right == showDetail && m.rightShown() {
			m.detail.refresh()
		}
	}
	return tea.Tick(wait, func(time.Time) tea.Msg { return statsTickMsg{} })
}

// statsShown reports whether something on screen shows the stats.
func (m *Model) statsShown() bool {
	return m.leftShown() || m.right == showDetail && m.rightShown()
}

// onStatsTick reads again if the stats are on screen, else only waits.
func (m *Model) onStatsTick() tea.Cmd {
	if m.statsShown() {
		return m.loadStats()
	}
	return tea.Tick(statsPoll, func(time.Time) tea.Msg { return statsTickMsg{} })
}

// statsOf is the sample of the deployment id's containers (ok false when
// it is not the one sampled: not ACTIVE, or not sampled yet).
func (c *common) statsOf(service, id string) (api.ServiceStats, bool) {
	s, ok := c.stats[service]
	if !ok || id == "" || s.Deployment != id {
		return api.ServiceStats{}, false
	}
	return s, true
}

// usageWidth is the services list's CPU and MEM cell: two numbers of
// cpuWidth cells.
const (
	cpuWidth   = 6
	usageWidth = 2*cpuWidth + 1
	usageTitle = "   CPU    MEM"
)

// cpuText is a CPU share in percent of one CPU in exactly cpuWidth cells
// ("  0.3%", " 12.5%", "  150%"); "-" when unknown.
func cpuText(p *float64) string {
	switch {
	case p == nil:
		return fmt.Sprintf("%*s", cpuWidth, "-")
	case *p < 99.95:
		return fmt.Sprintf("%5.1f%%", *p)
	case *p < 99999.5:
		return fmt.Sprintf("%5.0f%%", *p)
	}
	return "  >1k%"
}

// memText is a size in bytes in exactly cpuWidth cells, binary units
// (" 12.3M" is 12.3 MiB, "  512K").
func memText(b uint64) string {
	v := float64(b)
	units := "BKMGTP"
	i := 0
	for v >= 999.95 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v < 99.95 && i > 0 {
		return fmt.Sprintf("%5.1f%c", v, units[i])
	}
	return fmt.Sprintf("%5.0f%c", v, units[i])
}

// usageCell is a service's CPU and MEM in the list: "-" for both when
// nothing is ACTIVE or sampled yet.
func (l *servicesList) usageCell(r *serviceRow) string {
	id := ""
	if r.ActiveDeploymentID != nil {
		id = *r.ActiveDeploymentID
	}
	s, ok := l.c.statsOf(r.Name, id)
	if !ok {
		return cpuText(nil) + " " + fmt.Sprintf("%*s", cpuWidth, "-")
	}
	return cpuText(s.CPUPercent) + " " + memText(s.MemoryBytes)
}

// usageLine is the detail's line of an ACTIVE deployment's use.
func usageLine(s api.ServiceStats, limit int64) string {
	line := "cpu " + cpuText(s.CPUPercent) + " · memory " + memText(s.MemoryBytes)
	if limit > 0 {
		line += " of " + memText(uint64(limit)*uint64(max(len(s.Containers), 1)))
	}
	if n := len(s.Containers); n > 1 {
		line += fmt.Sprintf(" · %d containers", n)
	}
	return line
}
