package edge

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/internal/testnet"
)

// A service with several backends (its replicas) has every one of them answer:
// equally idle backends take turns.
func TestPoolSpreadsRequestsAcrossBackends(t *testing.T) {
	backends := []*testBackend{newTestBackend(t, "A"), newTestBackend(t, "B"), newTestBackend(t, "C")}
	r := New(Options{})
	r.SetRoute("web", []string{"web.localhost"}, backends[0].addr, backends[1].addr, backends[2].addr)
	base, c := startRouter(t, r), newClient(t)
	seen := map[string]int{}
	for range 30 {
		res, body, err := get(t.Context(), c, base, "web.localhost", "/")
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET: %v %v", res, err)
		}
		seen[body]++
	}
	for _, b := range backends {
		if seen[b.name] < 5 {
			t.Errorf("backend %s answered %d of 30 requests (%v), want about a third", b.name, seen[b.name], seen)
		}
	}
	if got := r.routes()["web.localhost"]; got != backends[0].addr+","+backends[1].addr+","+backends[2].addr {
		t.Errorf("routes: %q", got)
	}
}

// A request goes to the backend with the fewest requests in flight: while A holds
// one, every request sent one after the other goes to B (turns alone would send
// every other one to A, where it would wait).
func TestPoolPicksTheBackendWithFewestInFlight(t *testing.T) {
	f := newBlueGreen(t)
	f.r.SetRoute("web", []string{"web.localhost"}, f.a.addr, f.b.addr)
	close(f.b.release) // B answers its /slow at once; A holds each one
	held := make(chan answer, 8)
	for {
		ch := f.getAsync("/slow")
		select {
		case <-f.a.started: // A holds it now
			go func() { held <- <-ch }()
		case a := <-ch: // B answered: try again
			if a.err != nil || a.status != http.StatusOK {
				t.Fatalf("GET /slow on B: %d %v", a.status, a.err)
			}
			continue
		}
		break
	}
	if n := f.r.inFlight(f.a.addr); n != 1 {
		t.Fatalf("in flight on A: %d, want 1", n)
	}
	for i := range 20 {
		res, body, err := get(t.Context(), f.c, f.base, "web.localhost", "/")
		if err != nil || res.StatusCode != http.StatusOK || body != "B" {
			t.Fatalf("request %d with one in flight on A: %v %q %v, want B's answer", i, res, body, err)
		}
	}
	close(f.a.release)
	if a := <-held; a.err != nil || a.status != http.StatusOK {
		t.Fatalf("the held request: %d %v", a.status, a.err)
	}
}

// A backend of the set that refuses connections or closes them unanswered (a
// replica that just died) costs no request: each plain request it leaves
// unanswered goes to another backend at once, with no wait for the route to change.
// A request with a body is not sent twice: it gets its 502.
func TestPoolSendsUnansweredRequestsToAnotherBackend(t *testing.T) {
	live := newTestBackend(t, "live")
	for _, dead := range []string{testnet.RefusedAddr(t), closingAddr(t)} {
		for _, retry := range []time.Duration{0, time.Minute} {
			r := New(Options{RetryUnanswered: retry})
			r.SetRoute("web", []string{"web.localhost"}, dead, live.addr)
			base, c := startRouter(t, r), newClient(t)
			start := time.Now()
			for i := range 20 {
				res, body, err := get(t.Context(), c, base, "web.localhost", "/")
				if err != nil || res.StatusCode != http.StatusOK || body != "live" {
					t.Fatalf("%s (retry %s), request %d: %v %q %v, want live's answer", dead, retry, i, res, body, err)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("%s (retry %s): 20 requests took %s: they waited for a route change", dead, retry, d)
			}
			if got := r.Responses(dead); got != [5]uint64{} {
				t.Errorf("%s (retry %s): the dead backend counts answers %v", dead, retry, got)
			}

			posts := map[int]int{}
			for range 8 {
				req, _ := http.NewRequest(http.MethodPost, base+"/", strings.NewReader("x"))
				req.Host = "web.localhost"
				res, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				res.Body.Close()
				posts[res.StatusCode]++
			}
			if posts[http.StatusOK] == 0 || posts[http.StatusBadGateway] == 0 || len(posts) != 2 {
				t.Errorf("%s (retry %s): 8 POSTs answered %v, want some 200s (live) and some 502s (dead, never sent twice)", dead, retry, posts)
			}
		}
	}
}

// When every backend of the set left a plain request unanswered it waits, as
// with one backend, for the route to change (RetryUnanswered), then goes there.
func TestPoolWaitsForARouteChangeWhenEveryBackendIsDead(t *testing.T) {
	live := newTestBackend(t, "live")
	r := New(Options{RetryUnanswered: time.Minute})
	r.SetRoute("web", []string{"web.localhost"}, testnet.RefusedAddr(t), testnet.RefusedAddr(t))
	base, c := startRouter(t, r), newClient(t)
	ch := getAsync(c, base, "web.localhost", "/")
	waitHeld(t, r, 1)
	r.SetRoute("web", []string{"web.localhost"}, live.addr)
	if a := <-ch; a.err != nil || a.status != http.StatusOK || a.body != "live" {
		t.Fatalf("%d %q %v, want live's answer", a.status, a.body, a.err)
	}
}

// Taking one backend out of the set (a replica scaled away or unhealthy) leaves
// its requests in flight to finish there, and Drain waits for them, while every
// new request goes to the backends left.
func TestPoolRemovesABackendAndDrainsIt(t *testing.T) {
	f := newBlueGreen(t)
	f.r.SetRoute("web", []string{"web.localhost"}, f.a.addr, f.b.addr)
	close(f.b.release)
	var slow <-chan answer
	for slow == nil {
		ch := f.getAsync("/slow")
		select {
		case <-f.a.started:
			slow = ch
		case <-ch:
		}
	}
	prev := f.r.SetRoute("web", []string{"web.localhost"}, f.b.addr)
	if !slices.Equal(prev, []string{f.a.addr, f.b.addr}) {
		t.Fatalf("previous backends %q", prev)
	}
	drained := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		drained <- f.r.Drain(ctx, f.a.addr)
	}()
	for i := range 10 {
		if res, body, err := get(t.Context(), f.c, f.base, "web.localhost", "/"); err != nil || res.StatusCode != http.StatusOK || body != "B" {
			t.Fatalf("request %d after A left the set: %v %q %v", i, res, body, err)
		}
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain(A) returned %v with a request in flight", err)
	default:
	}
	close(f.a.release)
	if a := <-slow; a.err != nil || a.status != http.StatusOK || a.body != "A" {
		t.Fatalf("the request in flight on A: %d %q %v, want A's answer", a.status, a.body, a.err)
	}
	if err := <-drained; err != nil {
		t.Fatalf("Drain(A): %v", err)
	}
}
