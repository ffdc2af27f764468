package ssh

import (
	"context"
	"sync"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/internal/pubsub"
	"github.com/clank-dev/clank/ui"
)

// eventFeed is the sessions' one event stream from the daemon, fanned out in
// this process: every session's dashboard subscribes here, not to the
// daemon. One stream per session cost the daemon an encoding and a write per
// event per session and this process a read and a decode each, and it
// delivered a change to the sessions one network wakeup at a time while the
// first ones were already drawing it (BENCHMARKS.md, issue 9). Events are the
// same for every role, so sharing them shows no session anything its own
// stream would not.
//
// The stream opens with the first subscription. When the daemon ends it,
// every session's channel closes, as its own stream's would: each dashboard
// subscribes again (which opens a new stream) and reloads.
type eventFeed struct {
	ctx     context.Context // the server's: the stream ends with it
	backend ui.Backend
	mu      sync.Mutex
	bus     *pubsub.Bus[api.Event] // nil while no stream is open
}

// feedCaller is who the shared stream is asked for: a read that every role
// may make.
var feedCaller = api.Caller{Actor: "ssh dashboard", Role: api.RoleViewer}

// subscribe streams the daemon's events from now on until ctx ends or the
// daemon's stream does.
func (f *eventFeed) subscribe(ctx context.Context) (<-chan api.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bus == nil {
		// Opened before the session's subscription is added: nothing
		// published after subscribe returns is missed.
		up, err := f.backend.Subscribe(api.WithCaller(f.ctx, feedCaller))
		if err != nil {
			return nil, err
		}
		bus := &pubsub.Bus[api.Event]{}
		f.bus = bus
		go f.forward(up, bus)
	}
	return f.bus.Subscribe(ctx), nil
}

// forward publishes the daemon's events to the sessions until its stream
// ends, then closes theirs.
func (f *eventFeed) forward(up <-chan api.Event, bus *pubsub.Bus[api.Event]) {
	for ev := range up {
		bus.Publish(ev, nil) // the daemon's Seq stays
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bus = nil
	bus.Close()
}

// subscribers counts the sessions subscribed.
func (f *eventFeed) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.bus == nil {
		return 0
	}
	return f.bus.Subscribers()
}
