// Package testload drives the closed-loop client load that the engine's
// tests put on a service while they deploy, roll back or crash it (every
// answer is handed to the test, which decides what a failure is), and waits
// for what the test expects to see.
package testload

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Bound is how long the clients run at the most, so that a test that hangs
// before it calls stop still ends its load.
const Bound = 5 * time.Minute

// Run starts clients goroutines, each calling get in a closed loop and
// passing every answer to seen (which must be safe for concurrent use),
// until the returned stop is called or Bound passes. stop waits for the
// clients and returns how many requests they sent.
func Run(clients int, get func() (code int, body string, err error), seen func(code int, body string, err error)) (stop func() int64) {
	done := make(chan struct{})
	var total atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(Bound)
	for range clients {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				select {
				case <-done:
					return
				default:
				}
				code, body, err := get()
				total.Add(1)
				seen(code, body, err)
			}
		})
	}
	return func() int64 {
		close(done)
		wg.Wait()
		return total.Load()
	}
}

// Eventually polls cond until it holds, and fails tb with what() if within
// passes first.
func Eventually(tb testing.TB, within time.Duration, what func() string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("not within %s: %s", within, what())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
