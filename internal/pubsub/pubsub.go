// Package pubsub fans values out to subscribers without ever blocking the
// publisher: a subscriber that falls too far behind is cut off (its channel
// closes) and is expected to subscribe again and reload.
package pubsub

import (
	"context"
	"sync"
)

// Bus delivers every published value to every current subscriber, in order.
// The zero value is ready to use.
type Bus[T any] struct {
	mu     sync.Mutex
	seq    int64
	subs   map[chan T]func() bool // each one's stop of its context.AfterFunc
	closed bool
	// Buffer is how far a subscriber may fall behind; 0 means 4096.
	Buffer int
}

// Publish sends v to every subscriber; stamp, if non-nil, is called under the
// bus lock with the next sequence number so that values carry their order.
func (b *Bus[T]) Publish(v T, stamp func(*T, int64)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	if stamp != nil {
		stamp(&v, b.seq)
	}
	for ch := range b.subs {
		select {
		case ch <- v:
		default: // too slow: cut it off rather than block the publisher
			b.drop(ch)
		}
	}
}

// Subscribe streams every value published from now on until ctx ends; then
// the channel is closed.
func (b *Bus[T]) Subscribe(ctx context.Context) <-chan T {
	n := b.Buffer
	if n == 0 {
		n = 4096
	}
	ch := make(chan T, n)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		close(ch)
		return ch
	}
	if b.subs == nil {
		b.subs = map[chan T]func() bool{}
	}
	// No goroutine waits for ctx: a subscription whose context never ends
	// costs nothing once it is cut off or the bus closes.
	b.subs[ch] = context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if _, ok := b.subs[ch]; ok {
			delete(b.subs, ch)
			close(ch)
		}
	})
	b.mu.Unlock()
	return ch
}

// Close ends the bus: every subscriber's channel closes, as a cut-off one
// does, and a later Subscribe gets a closed channel.
func (b *Bus[T]) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		b.drop(ch)
	}
}

// drop ends ch's subscription; b.mu is held.
func (b *Bus[T]) drop(ch chan T) {
	b.subs[ch]()
	delete(b.subs, ch)
	close(ch)
}

// Subscribers counts the current subscribers.
func (b *Bus[T]) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}
