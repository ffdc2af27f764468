package ssh_test

import (
	"context"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Shutdown while clients are still connecting: connections that finish
// their handshake as Shutdown begins must neither race with it (run with
// -race) nor keep it from returning.
func TestShutdownWhileConnecting(t *testing.T) {
	dir := t.TempDir()
	k := newKey(t)
	writeAuthorizedKeys(t, dir, authLine(k, ""))
	w := serveOn(t, dir, quiet(t).Client)
	stop := make(chan struct{})
	var dialers sync.WaitGroup
	connected := make(chan struct{}, 64)
	for range 8 {
		dialers.Add(1)
		go func() {
			defer dialers.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := w.dial("a", gossh.PublicKeys(k))
				if err != nil {
					continue // refused once the server is closing
				}
				select {
				case connected <- struct{}{}:
				default:
				}
				_ = c.Close()
			}
		}()
	}
	for range 16 {
		select {
		case <-connected:
		case <-time.After(waitWithin):
			t.Fatal("no client connected")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	close(stop)
	dialers.Wait()
}
