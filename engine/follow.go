package engine

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clank-dev/clank/store"
)

// Following the Docker engine: its event stream tells the supervisors about
// their containers and the availability checker about removed images. When
// the stream ends and the engine does not answer, Docker is down: every route
// answers 503 (after RecoverHold) until Docker is back and has confirmed each
// container again, because a restarted Docker engine may hand an old host
// port to another container. Each time the stream opens, the engine
// reconciles live, without a restart of Clank.

// Reconnect backoff while the Docker engine does not answer.
const (
	dockerRetryMin = 100 * time.Millisecond
	dockerRetryMax = 2 * time.Second
)

// dockerState is what the engine last knew of the Docker engine.
type dockerState struct {
	mu    sync.Mutex
	known bool
	up    bool
	err   string
	since time.Time
	// lost counts the times Docker was lost: a check that began before a
	// loss does not verify a container after it.
	lost atomic.Uint64
}

// DockerStatus is whether the Docker engine answers, since when, and why not.
type DockerStatus struct {
	Up    bool
	Err   string // why it does not answer
	Since time.Time
}

// Docker says whether the engine's Docker engine answers, as its event stream
// last showed.
func (e *Engine) Docker() DockerStatus {
	e.docker.mu.Lock()
	defer e.docker.mu.Unlock()
	return DockerStatus{Up: e.docker.up, Err: e.docker.err, Since: e.docker.since}
}

// setDocker records whether Docker answers (err nil) and publishes a change.
// Docker lost, the routes are withdrawn before the event goes out: whoever
// hears "down" finds nothing routed that Docker has not confirmed.
func (e *Engine) setDocker(err error) {
	up := err == nil
	e.docker.mu.Lock()
	changed := !e.docker.known || e.docker.up != up
	e.docker.known, e.docker.up = true, up
	if up {
		e.docker.err = ""
	} else {
		e.docker.err = err.Error()
	}
	if changed {
		e.docker.since = time.Now()
	}
	e.docker.mu.Unlock()
	if changed {
		status, msg := DockerUp, "the Docker engine answers"
		if !up {
			e.dockerLost()
			status, msg = DockerDown, "the Docker engine does not answer: "+err.Error()
			e.log.Warn("Docker engine lost: routes answer 503 until it is back and each container is checked again", "err", err)
		} else {
			e.log.Info("Docker engine answers: reconciling")
		}
		e.publish(Event{Type: EventDocker, Status: store.Status(status), Message: msg})
	}
}

// followDocker follows the Docker engine's events until ctx ends,
// subscribing again whenever the stream ends, and reconciles live on each
// (re)connect.
func (e *Engine) followDocker(ctx context.Context) {
	retry := dockerRetryMin
	for ctx.Err() == nil {
		events, errs := e.rt.Events(ctx)
		var err error
		select {
		case err = <-errs:
		default:
		}
		if err == nil {
			retry = dockerRetryMin
			e.setDocker(nil)
			e.reconcileLive(ctx)
			err = e.consume(ctx, events, errs)
		}
		if ctx.Err() != nil {
			return
		}
		e.log.Debug("Docker events stream ended", "err", err)
		// Only the stream, or the engine itself?
		if perr := e.rt.Ping(ctx); perr != nil && ctx.Err() == nil {
			e.setDocker(perr)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		retry = min(2*retry, dockerRetryMax)
	}
}

// consume hands each event to whoever follows it until the stream ends, and
// returns why it ended.
func (e *Engine) consume(ctx context.Context, events <-chan RuntimeEvent, errs <-chan error) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return <-errs
			}
			e.onRuntimeEvent(ev)
		}
	}
}

// onRuntimeEvent: a container event of this instance goes to its supervisor
// (a die crashes the replica on the spot, see sawExit), or has the warm
// standbys looked at; the removal of an image a deployment's availability
// stood on has the local images checked again at once, so that a badge goes
// within seconds.
func (e *Engine) onRuntimeEvent(ev RuntimeEvent) {
	switch ev.Type {
	case EventTypeImage:
		if (ev.Action == ActionDelete || ev.Action == ActionUntag) && e.holdsImage(ev.ID) {
			select {
			case e.recheck <- struct{}{}:
			default: // one is pending already
			}
		}
	case EventTypeNode:
		e.kickSwarm("") // a node went or came back: every task list may change
	case EventTypeService:
		if name := ev.Labels["name"]; name != "" { // a service event's attribute
			e.kickSwarm(name)
		}
	case EventTypeContainer:
		if name := ev.Labels[LabelSwarmService]; name != "" {
			e.kickSwarm(name) // a task's container
			return
		}
		if ev.Labels[LabelOwner] != e.owner {
			return
		}
		switch {
		case ev.Action == ActionDie && e.sawExit(ev):
			return
		case ev.Action == ActionOOM && e.sawOOM(ev):
			return
		case e.dispatched(ev.ID):
			return
		}
		if ev.Action == ActionDie || ev.Action == ActionDestroy {
			e.pokeStandbys() // maybe a warm standby's
		}
	}
}

// dispatched passes an event about containerID to its supervisor, if one
// supervises it.
func (e *Engine) dispatched(containerID string) bool {
	e.supMu.Lock()
	r := e.byContainer[containerID]
	e.supMu.Unlock()
	if r != nil {
		r.kick()
	}
	return r != nil
}

// dockerLost makes every ACTIVE deployment's route unavailable until its
// supervisor has the container confirmed by Docker again. The count of
// losses goes up first: a look at Docker that began before it verifies
// nothing after it (see check and lookSwarm, which compare the count under
// the lock that unverify takes).
func (e *Engine) dockerLost() {
	e.docker.lost.Add(1)
	e.supMu.Lock()
	all := make([]*supervised, 0, len(e.sup))
	for _, s := range e.sup {
		all = append(all, s)
	}
	e.supMu.Unlock()
	for _, s := range all {
		e.unverify(s)
	}
}

// unverify takes every replica of s out of its route until Docker confirms
// its container again.
func (e *Engine) unverify(s *supervised) {
	s.mu.Lock()
	for _, r := range s.replicas {
		r.verified = false
	}
	s.mu.Unlock()
	e.routeReplicas(s, true)
}
