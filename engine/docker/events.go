package docker

import (
	"context"

	"github.com/moby/moby/client"

	"github.com/clank-dev/clank/engine"
)

// eventsBuffer lets the engine's stream run ahead of a slow reader a little.
const eventsBuffer = 64

// Events streams container "die" and "destroy" and image "delete" and "untag"
// events until ctx ends; the subscription is in place when Events returns. For a
// container, Labels holds the event's attributes: the container's labels plus
// "name", "image" and (for die) "exitCode". Both channels close when the
// stream ends; the error channel carries the reason first unless ctx ended.
// After an error the caller subscribes again.
func (r *Runtime) Events(ctx context.Context) (<-chan engine.RuntimeEvent, <-chan error) {
	filters := make(client.Filters).
		Add("type", "container", "image").
		Add("event", "die", "destroy", "delete", "untag")
	res := r.cli.Events(ctx, client.EventsListOptions{Filters: filters})

	events := make(chan engine.RuntimeEvent, eventsBuffer)
	errs := make(chan error, 1)
	go func() {
		defer close(errs)
		defer close(events)
		for {
			select {
			case m := <-res.Messages:
				ev := engine.RuntimeEvent{
					Type:   string(m.Type),
					Action: string(m.Action),
					ID:     m.Actor.ID,
					Labels: m.Actor.Attributes,
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
