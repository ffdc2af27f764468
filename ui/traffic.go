package ui

import (
	"strconv"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/clank-dev/clank/api"
)

// The services list's sparkline: what each service answered through the edge
// router, one cell per step of the router's counts (the engine's
// TrafficStep), the newest on the right, with the last step's rate beside
// it. A step that had 5xx answers is drawn in the error colour. The counts
// are read again when the engine says they gained a step ("traffic"
// events, sent only when something was answered); between two reads the
// sparkline moves on with the clock, the steps no event announced being
// empty.

// sparkCells is how many steps the sparkline shows (the router's counts
// keep more: the last five minutes).
const sparkCells = 10

var sparkBlocks = []rune("▁▂▃▄▅▆▇█")

// trafficMsg answers a read of the router's counts.
type trafficMsg struct {
	traffic []api.Traffic
	err     error
}

// loadTraffic reads every service's counts, unless a read is on its way.
func (l *servicesList) loadTraffic() tea.Cmd {
	if l.trafficLoading {
		l.trafficStale = true
		return nil
	}
	l.trafficLoading = true
	ctx, b := l.c.ctx, l.c.backend
	return func() tea.Msg {
		t, err := b.Traffic(ctx, "")
		return trafficMsg{traffic: t, err: err}
	}
}

// applyTraffic keeps what was read; it reads again if an event came while
// reading.
func (l *servicesList) applyTraffic(msg trafficMsg) tea.Cmd {
	l.trafficLoading = false
	if msg.err == nil {
		l.counts = make(map[string]api.Traffic, len(msg.traffic))
		for _, t := range msg.traffic {
			l.counts[t.Service] = t
		}
	}
	if l.trafficStale {
		l.trafficStale = false
		return l.loadTraffic()
	}
	return nil
}

// steps are a service's answers per second in the sparkline's cells
// (oldest first) and whether each had a 5xx; ok is false without counts.
func (l *servicesList) steps(name string, now time.Time) (rate [sparkCells]float64, bad [sparkCells]bool, ok bool) {
	t, found := l.counts[name]
	if !found || t.Step <= 0 || len(t.Points) == 0 {
		return rate, bad, false
	}
	step := time.Duration(t.Step * float64(time.Second))
	for _, p := range t.Points {
		ago := int(now.Sub(p.At) / step)
		i := sparkCells - 1 - max(ago, 0)
		if i < 0 {
			continue
		}
		total := p.C1xx + p.C2xx + p.C3xx + p.C4xx + p.C5xx
		rate[i] = float64(total) / t.Step
		bad[i] = p.C5xx > 0
	}
	return rate, bad, true
}

// traffic writes a service's sparkline, and its rate when w has room. A
// service with nothing ACTIVE has none ("-"); one whose counts are not in
// yet shows an empty one, as it would with no answers.
func (l *servicesList) traffic(b *strings.Builder, r *serviceRow, now time.Time, w int, hl bool) {
	p := &l.c.styles.paints
	if r.ActiveDeploymentID == nil {
		p.dim.pick(hl).put(b, fit("-", w))
		return
	}
	rate, bad, _ := l.steps(r.Name, now)
	top := 0.0
	for _, r := range rate {
		top = max(top, r)
	}
	var cells strings.Builder
	for i, r := range rate {
		cells.Reset()
		pt := p.spark
		switch {
		case r == 0:
			pt = p.dim
			cells.WriteRune(sparkBlocks[0])
		default:
			if bad[i] {
				pt = p.spark5xx
			}
			cells.WriteRune(sparkBlocks[min(int(r/top*float64(len(sparkBlocks)-1)+0.5), len(sparkBlocks)-1)])
		}
		pt.pick(hl).put(b, cells.String())
	}
	if rest := w - sparkCells; rest > 0 {
		pt := p.dim
		if bad[sparkCells-1] {
			pt = p.spark5xx
		}
		pt.pick(hl).put(b, fit(" "+rateText(rate[sparkCells-1]), rest))
	}
}

// rateText is a rate per second, short: "0.4/s", "12/s", "1.2k/s".
func rateText(r float64) string {
	switch {
	case r == 0:
		return "0/s"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 1, 64) + "/s"
	case r < 1000:
		return strconv.Itoa(int(r+0.5)) + "/s"
	}
	return strconv.FormatFloat(r/1000, 'f', 1, 64) + "k/s"
}

// trafficWait is how long until a sparkline on screen moves on by a step
// (0: none shows any answer).
func (l *servicesList) trafficWait(now time.Time) time.Duration {
	var wait time.Duration
	for _, i := range l.shown {
		t, ok := l.counts[l.rows[i].Name]
		if !ok || t.Step <= 0 || len(t.Points) == 0 {
			continue
		}
		step := time.Duration(t.Step * float64(time.Second))
		busy := false
		for _, p := range t.Points {
			if now.Sub(p.At) < sparkCells*step && p.C1xx+p.C2xx+p.C3xx+p.C4xx+p.C5xx > 0 {
				busy = true
			}
		}
		if busy {
			last := t.Points[len(t.Points)-1].At
			wait = soonest(wait, step-now.Sub(last)%step)
		}
	}
	return wait
}
