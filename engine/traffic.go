package engine

import (
	"context"
	"sync"
	"time"
)

// Traffic (docs/architecture.md, "After the cutover"): the edge router counts each
// backend's answers by class; every TrafficStep the engine adds what each
// service's ACTIVE containers answered to that service's series, which keeps
// the last TrafficSteps steps (the dashboard's sparkline of requests/s and
// 5xx). The watch reads the router's counts itself, every second.
const (
	TrafficStep  = 10 * time.Second
	TrafficSteps = 30 // five minutes
)

// TrafficPoint is what a service answered through the router in one step.
type TrafficPoint struct {
	At        time.Time // the end of the step
	Responses [5]uint64 // by class: [0] 1xx ... [4] 5xx
}

// Traffic is a service's recent answers, oldest step first.
type Traffic struct {
	Step   time.Duration
	Points []TrafficPoint
}

type trafficLog struct {
	mu     sync.Mutex
	seen   map[string][5]uint64      // the router's counts per backend, as last read
	series map[string][]TrafficPoint // per service
}

func (t *trafficLog) init() {
	t.seen = map[string][5]uint64{}
	t.series = map[string][]TrafficPoint{}
}

// Traffic is service's answers over the last TrafficSteps steps (fewer when
// Clank started more recently).
func (e *Engine) Traffic(service string) Traffic {
	e.traffic.mu.Lock()
	defer e.traffic.mu.Unlock()
	return Traffic{Step: TrafficStep, Points: append([]TrafficPoint(nil), e.traffic.series[service]...)}
}

func (e *Engine) trafficLoop(ctx context.Context) {
	tick := time.NewTicker(TrafficStep)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			e.sampleTraffic(now)
		}
	}
}

// sampleTraffic adds one step to every supervised service's series and
// streams an EventTraffic when anything was answered.
func (e *Engine) sampleTraffic(now time.Time) {
	backends := map[string][]string{} // service -> its ACTIVE containers' backends
	e.supMu.Lock()
	for _, s := range e.sup {
		s.mu.Lock()
		for _, r := range s.replicas {
			if r.hostPort != 0 {
				backends[s.d.Service] = append(backends[s.d.Service], backendAddr(r.hostPort))
			}
		}
		if _, ok := backends[s.d.Service]; !ok {
			backends[s.d.Service] = nil
		}
		s.mu.Unlock()
	}
	e.supMu.Unlock()

	t := &e.traffic
	t.mu.Lock()
	seen := make(map[string][5]uint64, len(t.seen))
	busy := false
	for service, bs := range backends {
		var step [5]uint64
		for _, b := range bs {
			c := e.router.Responses(b)
			last := t.seen[b]
			for i := range c {
				if c[i] < last[i] { // the router began this backend again
					last = [5]uint64{}
					break
				}
			}
			for i := range c {
				step[i] += c[i] - last[i]
				busy = busy || c[i] != last[i]
			}
			seen[b] = c
		}
		points := append(t.series[service], TrafficPoint{At: now, Responses: step})
		if len(points) > TrafficSteps {
			points = append(points[:0:0], points[len(points)-TrafficSteps:]...)
		}
		t.series[service] = points
	}
	t.seen = seen
	t.mu.Unlock()
	if busy {
		e.publish(Event{Type: EventTraffic, Message: "router counts sampled"})
	}
}
