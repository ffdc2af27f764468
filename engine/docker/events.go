package docker

import (
	"context"
	"time"

	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
)

// eventsBuffer lets the engine's stream run ahead of a slow reader a little.
const eventsBuffer = 64

// Events streams the container events the engine supervises by ("start",
// "die", "oom", "destroy", "health_status") and image "delete" and "untag"
// events until ctx ends. For a container, Labels holds the event's
// attributes: the container's labels plus "name", "image" and (for die)
// "exitCode"; a health_status action comes without its ": healthy" suffix.
//
// When Events returns, the subscription is in place, or the error channel
// already holds why not (the engine tells "Docker is back" from "still down"
// by that). Both channels close when the stream ends; the error channel
// carries the reason first unless ctx ended. After an error the caller
// subscribes again.
func (r *Runtime) Events(ctx context.Context) (<-chan engine.RuntimeEvent, <-chan error) {
	return r.EventsOf(ctx, nil, nil)
}

// EventsOf is Events for more event types and actions besides those
// (engine/swarm follows Swarm's service and node events too).
func (r *Runtime) EventsOf(ctx context.Context, types, actions []string) (<-chan engine.RuntimeEvent, <-chan error) {
	filters := make(client.Filters).
		Add("type", append([]string{engine.EventTypeContainer, engine.EventTypeImage}, types...)...).
		Add("event", append([]string{engine.ActionStart, engine.ActionDie, engine.ActionOOM, engine.ActionDestroy,
			engine.ActionHealth, engine.ActionDelete, engine.ActionUntag}, actions...)...)
	// The client returns once the engine answered the request (or failed to).
	res := r.cli.Events(ctx, client.EventsListOptions{Filters: filters})

	events := make(chan engine.RuntimeEvent, eventsBuffer)
	errs := make(chan error, 1)
	select {
	case err := <-res.Err:
		if ctx.Err() == nil {
			errs <- r.fail(err, "Docker events stream")
		}
		close(events)
		close(errs)
		return events, errs
	default:
	}
	go func() {
		defer close(errs)
		defer close(events)
		for {
			select {
			case m := <-res.Messages:
				ev := engine.RuntimeEvent{
					Type:   string(m.Type),
					Action: actionName(string(m.Action)),
					ID:     m.Actor.ID,
					Labels: m.Actor.Attributes,
					At:     time.Unix(0, m.TimeNano),
				}
				select {
				case events <- ev:
				case <-ctx.Done():
					return
				}
			case err := <-res.Err:
				if ctx.Err() == nil {
					errs <- r.fail(err, "Docker events stream")
				}
				return
			case <-ctx.Done():
				return
			}
		}
	}()
	return events, errs
}

// actionName drops the detail some actions carry ("health_status: healthy").
func actionName(action string) string {
	for i := 0; i < len(action); i++ {
		if action[i] == ':' {
			return action[:i]
		}
	}
	return action
}
