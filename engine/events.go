package engine

import (
	"context"
	"time"

	"github.com/clank-dev/clank/store"
)

// Event types.
const (
	EventDeployment   = "deployment"    // a deployment changed status
	EventService      = "service"       // a service was created or its config changed
	EventAvailability = "availability"  // an image's availability changed
	EventRuntime      = "runtime"       // an ACTIVE deployment's runtime changed (Event.Runtime)
	EventWatch        = "watch"         // a deployment's watch tripped
	EventAutoRollback = "auto_rollback" // the watch started a rollback (Deployment is the rollback)
	EventDocker       = "docker"        // the Docker engine went away (Status "down") or came back ("up")
	EventTraffic      = "traffic"       // the router's counts gained a sample (Engine.Traffic)
	// EventProbe: a HEALTH_CHECKING deployment's health check got a result
	// (the pass is an EventDeployment, recorded): streamed only, once per
	// attempt and when it changes (probes.go).
	EventProbe = "probe"
	// EventAutoRollbackRefused: the watch tripped with auto-rollback on, and
	// the rules forbid the rollback; the message says why.
	EventAutoRollbackRefused = "auto_rollback_refused"
)

// Statuses of an EventDocker.
const (
	DockerUp   = "up"
	DockerDown = "down"
)

// Event is one change the engine streams to its subscribers.
type Event struct {
	Seq        int64
	Type       string
	Service    string
	Deployment *store.Deployment // after the change, for EventDeployment, EventRuntime, EventWatch, EventAutoRollback
	Runtime    *RuntimeState     // for EventRuntime: the runtime after the change
	Status     store.Status
	Message    string
	At         time.Time
}

// Subscribe streams every event from now on until ctx ends (then the channel
// is closed). A subscriber that falls far behind is cut off: its channel
// closes early, and it should subscribe again and reload.
func (e *Engine) Subscribe(ctx context.Context) <-chan Event {
	return e.bus.Subscribe(ctx)
}

func (e *Engine) publish(ev Event) {
	if ev.At.IsZero() {
		ev.At = time.Now()
	}
	e.bus.Publish(ev, func(ev *Event, seq int64) { ev.Seq = seq })
}

func (e *Engine) publishDeployment(d store.Deployment, msg string) {
	e.publish(Event{Type: EventDeployment, Service: d.Service, Deployment: &d, Status: d.Status, Message: msg})
}
