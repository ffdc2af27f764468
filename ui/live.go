package ui

import (
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/clank-dev/clank/api"
)

// maxEventBatch bounds how many queued events one message carries: a burst
// costs one update and one frame, not one each.
const maxEventBatch = 256

// retryDelay is the wait before subscribing again after the stream is lost.
const retryDelay = time.Second

// Messages of the live event stream. gen ties them to one subscription.
type (
	subscribedMsg struct {
		gen int
		ch  <-chan api.Event
		err error
	}
	eventsMsg struct {
		gen    int
		events []api.Event
		closed bool // the stream ended after these events
	}
	resubscribeMsg struct{}
)

// subscription is the dashboard's one reader of the Backend's event stream:
// a command that waits for events, delivers what is queued, and is re-armed
// after each delivery.
type subscription struct {
	c    *common
	gen  int
	ch   <-chan api.Event
	lost bool
}

// start subscribes (again).
func (s *subscription) start() tea.Cmd {
	s.gen++
	ctx, b, gen := s.c.ctx, s.c.backend, s.gen
	return func() tea.Msg {
		ch, err := b.Subscribe(ctx)
		return subscribedMsg{gen: gen, ch: ch, err: err}
	}
}

func (s *subscription) subscribed(msg subscribedMsg) tea.Cmd {
	if msg.gen != s.gen {
		return nil
	}
	if msg.err != nil {
		return s.lostStream()
	}
	s.ch, s.lost = msg.ch, false
	return s.next()
}

// next waits for the next events.
func (s *subscription) next() tea.Cmd {
	ch, gen := s.ch, s.gen
	return func() tea.Msg {
		ev, ok := <-ch
		if !ok {
			return eventsMsg{gen: gen, closed: true}
		}
		events := []api.Event{ev}
		for len(events) < maxEventBatch {
			select {
			case ev, ok := <-ch:
				if !ok {
					return eventsMsg{gen: gen, events: events, closed: true}
				}
				events = append(events, ev)
				continue
			default:
			}
			break
		}
		return eventsMsg{gen: gen, events: events}
	}
}

// lostStream schedules a new subscription, unless the dashboard is ending.
func (s *subscription) lostStream() tea.Cmd {
	if s.c.ctx.Err() != nil {
		return nil
	}
	s.lost = true
	return tea.Tick(retryDelay, func(time.Time) tea.Msg { return resubscribeMsg{} })
}
