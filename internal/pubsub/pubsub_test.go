package pubsub

import (
	"context"
	"runtime"
	"testing"
)

func TestBusOrderAndCutOff(t *testing.T) {
	var b Bus[int64]
	b.Buffer = 4
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fast := b.Subscribe(ctx)
	slow := b.Subscribe(ctx)
	for i := 0; i < 4; i++ {
		b.Publish(0, func(v *int64, seq int64) { *v = seq })
		if got := <-fast; got != int64(i+1) {
			t.Fatalf("fast got %d, want %d", got, i+1)
		}
	}
	b.Publish(0, func(v *int64, seq int64) { *v = seq }) // slow's buffer is full: cut off
	if got := <-fast; got != 5 {
		t.Fatalf("fast got %d, want 5", got)
	}
	n := 0
	for range slow {
		n++
	}
	if n != 4 {
		t.Fatalf("slow got %d values before being cut off, want 4", n)
	}
	if b.Subscribers() != 1 {
		t.Fatalf("subscribers = %d, want 1", b.Subscribers())
	}
	cancel()
	if _, ok := <-fast; ok {
		t.Fatal("fast channel not closed after cancel")
	}
}

func TestBusClose(t *testing.T) {
	var b Bus[string]
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := b.Subscribe(ctx)
	b.Publish("kept", nil)
	b.Close()
	if got, ok := <-before; !ok || got != "kept" {
		t.Fatalf("a value published before Close: got %q (open %v)", got, ok)
	}
	if _, ok := <-before; ok {
		t.Fatal("a subscriber's channel is open after Close")
	}
	b.Publish("lost", nil) // no subscriber left: nothing to send, no panic
	if _, ok := <-b.Subscribe(ctx); ok {
		t.Fatal("a Subscribe after Close got an open channel")
	}
	cancel() // the closed subscriptions' contexts end: no second close
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after Close", n)
	}
}

// A subscription whose context never ends (a daemon-long stream) costs no
// goroutine, neither while it lasts nor once it is cut off or the bus closes.
func TestSubscriptionsHoldNoGoroutine(t *testing.T) {
	var b Bus[int]
	b.Buffer = 1
	before := runtime.NumGoroutine()
	chs := make([]<-chan int, 200)
	for i := range chs {
		chs[i] = b.Subscribe(context.Background())
	}
	if n := runtime.NumGoroutine() - before; n > 10 {
		t.Errorf("%d goroutines more with 200 subscriptions", n)
	}
	b.Publish(1, nil)
	b.Publish(2, nil) // every buffer is full: all cut off
	for _, ch := range chs {
		if v := <-ch; v != 1 {
			t.Fatalf("got %d first, want 1", v)
		}
		if _, ok := <-ch; ok {
			t.Fatal("a cut-off subscription's channel is open")
		}
	}
	if n := b.Subscribers(); n != 0 {
		t.Fatalf("%d subscribers after the cut-off", n)
	}
	if n := runtime.NumGoroutine() - before; n > 10 {
		t.Errorf("%d goroutines more once every subscription is cut off", n)
	}
}
