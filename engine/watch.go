package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/clank-dev/clank/store"
)

// The watch window (docs/architecture.md, "After the cutover"): for the service's
// --watch-window after a deployment became ACTIVE, a crash, --watch-failures
// failed probes in a row or a --watch-5xx ratio of 5xx answers trips the
// watch. With --auto-rollback the engine then rolls back to the deployment
// ACTIVE before; without it an event says what tripped. A deployment is
// watched with the service's policy at its cutover.

const (
	// Watch5xxMin is how many answers the 5xx ratio needs before it counts.
	Watch5xxMin = 20
	// Watch5xxSpan is how far back the 5xx ratio looks.
	Watch5xxSpan = time.Minute
	// watchTick is how often the watch reads the router's counts.
	watchTick = time.Second
	// autoRollbackPrefix begins the triggered_by of an automatic rollback:
	// "clank (watch: <reason>)".
	autoRollbackPrefix = "clank (watch: "
)

// IsAutoRollback reports whether the watch made d (docs/architecture.md: never twice in
// a row, so such a deployment is never rolled back automatically).
func IsAutoRollback(d store.Deployment) bool {
	return d.Kind == store.KindRollback && strings.HasPrefix(d.TriggeredBy, autoRollbackPrefix)
}

// watch is the state of one deployment's watch window.
type watch struct {
	policy  store.Policy
	until   time.Time
	tripped bool
	seen    map[string][5]uint64 // the router's counts per backend, as last read
	samples []countSample        // running totals, one per tick, over Watch5xxSpan
	total   uint64
	errors  uint64
}

// countSample is the running totals of answers and of 5xx answers at a time.
type countSample struct {
	at            time.Time
	total, errors uint64
}

// newWatch starts a watch until until with policy p, or returns nil when the
// window is over already.
func newWatch(p store.Policy, until time.Time) *watch {
	if !time.Now().Before(until) {
		return nil
	}
	return &watch{policy: p, until: until, seen: map[string][5]uint64{}, samples: []countSample{{at: time.Now()}}}
}

// runWatch reads the router's counts of the deployment's answers every
// watchTick until the window ends or the watch trips.
func (e *Engine) runWatch(ctx context.Context, s *supervised) {
	tick := newGridTicker(watchTick) // on the probes' ticks (the default interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			tick.next()
		}
		s.mu.Lock()
		w := s.watch
		if w == nil || w.tripped {
			s.mu.Unlock()
			return
		}
		now := time.Now()
		if !now.Before(w.until) {
			s.watch = nil // the window passed (watch_until says when)
			s.mu.Unlock()
			return
		}
		var backends []string
		for _, r := range s.replicas {
			if r.hostPort != 0 {
				backends = append(backends, backendAddr(r.hostPort))
			}
		}
		s.mu.Unlock()
		counts := make(map[string][5]uint64, len(backends))
		for _, b := range backends {
			counts[b] = e.router.Responses(b)
		}
		s.mu.Lock()
		reason := w.add(now, counts)
		s.mu.Unlock()
		if reason != "" {
			e.trip(s, reason)
		}
	}
}

// add counts what the backends answered since the last tick (a restarted
// container's fresh counts included) and returns a trip reason when the 5xx
// ratio over Watch5xxSpan reaches the policy's.
func (w *watch) add(now time.Time, counts map[string][5]uint64) string {
	for b, c := range counts {
		last := w.seen[b]
		for i := range c {
			if c[i] < last[i] { // the router forgot the backend and began again
				last = [5]uint64{}
				break
			}
		}
		for i := range c {
			w.total += c[i] - last[i]
		}
		w.errors += c[4] - last[4]
		w.seen[b] = c
	}
	w.samples = append(w.samples, countSample{at: now, total: w.total, errors: w.errors})
	// The base is the newest sample at least Watch5xxSpan old, or the
	// cutover's (the first) while the window is younger than that.
	for len(w.samples) > 1 && !w.samples[1].at.After(now.Add(-Watch5xxSpan)) {
		w.samples = w.samples[1:]
	}
	base := w.samples[0]
	total, errs := w.total-base.total, w.errors-base.errors
	if w.policy.Watch5xx > 0 && total >= Watch5xxMin && float64(errs) >= w.policy.Watch5xx*float64(total) {
		return fmt.Sprintf("%d of the last %d answers were 5xx", errs, total)
	}
	return ""
}

// watchCrash tells the watch that a replica crashed.
func (e *Engine) watchCrash(s *supervised, reason string) {
	if e.inWatch(s, func(*watch) bool { return true }) {
		e.trip(s, "crashed: "+reason)
	}
}

// watchFailures tells the watch how many probes in a row failed.
func (e *Engine) watchFailures(s *supervised, failures int, last string) {
	if e.inWatch(s, func(w *watch) bool { return w.policy.WatchFailures > 0 && failures >= w.policy.WatchFailures }) {
		e.trip(s, fmt.Sprintf("%d failed health checks in a row (%s)", failures, last))
	}
}

// inWatch reports whether s is inside an untripped watch window and trips
// says so; the watch is then marked tripped, so it trips once.
func (e *Engine) inWatch(s *supervised, trips func(*watch) bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.watch
	if w == nil || w.tripped || !time.Now().Before(w.until) || !trips(w) {
		return false
	}
	w.tripped = true
	return true
}

// trip records what tripped the watch of s and, with auto-rollback, rolls
// back, on a goroutine of the engine's (a rollback ends the supervision of
// s, which waits for its own goroutines).
func (e *Engine) trip(s *supervised, reason string) {
	s.mu.Lock()
	if s.watch != nil {
		s.watch.tripped = true
	}
	d, p := s.d, store.Policy{}
	if s.watch != nil {
		p = s.watch.policy
	}
	s.mu.Unlock()
	e.go_(func(ctx context.Context) { e.tripped(ctx, d, p, reason) })
}

// tripped records the trip and, with the policy's auto-rollback, rolls d
// back to the deployment ACTIVE before it: a normal rollback, triggered by
// "clank (watch: <reason>)". Never for a deployment an automatic rollback
// made, never to one whose own watch tripped, never to an image that is gone:
// the event says why.
func (e *Engine) tripped(ctx context.Context, d store.Deployment, p store.Policy, reason string) {
	bg := context.WithoutCancel(ctx)
	if nd, err := e.store.TripWatch(bg, d.ID, reason); err != nil {
		e.log.Error("record watch trip", "deployment", d.ID, "err", err)
	} else {
		d = nd
	}
	e.log.Warn("watch tripped", "service", d.Service, "deployment", d.ID, "reason", reason, "auto_rollback", p.AutoRollback)
	msg := fmt.Sprintf("#%d tripped its watch: %s", d.Number, reason)
	if !p.AutoRollback {
		msg += " (automatic rollback is off)"
	}
	e.publish(Event{Type: EventWatch, Service: d.Service, Deployment: &d, Status: d.Status, Message: msg})
	if !p.AutoRollback {
		return
	}
	nd, err := e.autoRollback(ctx, d, reason)
	if err != nil {
		e.log.Warn("no automatic rollback", "service", d.Service, "deployment", d.ID, "why", err)
		e.publish(Event{Type: EventAutoRollbackRefused, Service: d.Service, Deployment: &d, Status: d.Status,
			Message: fmt.Sprintf("no automatic rollback of #%d: %v", d.Number, err)})
		return
	}
	e.publish(Event{Type: EventAutoRollback, Service: d.Service, Deployment: &nd, Status: nd.Status,
		Message: fmt.Sprintf("rolling #%d back automatically: rollback #%d started (%s)", d.Number, nd.Number, reason)})
}

// errNoAutoRollback: the watch trips but the rules forbid a rollback.
var errNoAutoRollback = errors.New("no automatic rollback")

// autoRollback starts the rollback of d to the deployment ACTIVE before it.
func (e *Engine) autoRollback(ctx context.Context, d store.Deployment, reason string) (store.Deployment, error) {
	if IsAutoRollback(d) {
		return store.Deployment{}, fmt.Errorf("%w: #%d is itself an automatic rollback (never twice in a row)", errNoAutoRollback, d.Number)
	}
	target, err := e.store.LastActivated(ctx, d.Service, d.ID)
	if errors.Is(err, store.ErrNotFound) {
		return store.Deployment{}, fmt.Errorf("%w: no deployment of %s was ACTIVE before #%d", errNoAutoRollback, d.Service, d.Number)
	}
	if err != nil {
		return store.Deployment{}, err
	}
	if svc, err := e.store.GetService(ctx, d.Service); err != nil || svc.ActiveDeploymentID != d.ID {
		return store.Deployment{}, fmt.Errorf("%w: #%d is no longer ACTIVE", errNoAutoRollback, d.Number)
	}
	if target.WatchTripped != "" {
		return store.Deployment{}, fmt.Errorf("%w: #%d, ACTIVE before, tripped its own watch (%s)", errNoAutoRollback, target.Number, target.WatchTripped)
	}
	return e.Act(ctx, Request{Kind: store.KindRollback, Service: d.Service, Deployment: target.ID,
		TriggeredBy: autoRollbackPrefix + reason + ")"})
}
