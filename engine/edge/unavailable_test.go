package edge

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A service with nothing healthy answers 503 with Retry-After: at once after
// SetRoute with no backend, with the engine's hint after SetUnavailable.
func TestUnavailableAnswers503WithRetryAfter(t *testing.T) {
	r := New(Options{})
	r.SetRoute("new", []string{"new.localhost"}, "")
	r.SetUnavailable("crashed", []string{"crashed.localhost"}, 0, 6500*time.Millisecond)
	base := startRouter(t, r)
	c := newClient(t)
	for host, want := range map[string]string{"new.localhost": "1", "crashed.localhost": "7"} {
		res, body, err := get(t.Context(), c, base, host, "/")
		if err != nil {
			t.Fatal(err)
		}
		if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") != want || !strings.Contains(body, "no healthy deployment") {
			t.Errorf("%s: %d Retry-After %q %q, want 503 Retry-After %s", host, res.StatusCode, res.Header.Get("Retry-After"), body, want)
		}
	}
}

// During SetUnavailable's hold a request waits for a backend and is served by the
// one set next; after the hold it gets its 503 at once.
func TestUnavailableHoldsRequestsUntilABackendComes(t *testing.T) {
	f := newBlueGreen(t)
	f.r.SetUnavailable("web", []string{"web.localhost"}, time.Minute, time.Second)
	got := make([]<-chan answer, 3)
	for i := range got {
		got[i] = f.getAsync(fmt.Sprintf("/?n=%d", i))
	}
	waitHeld(t, f.r, 3)
	f.r.SetRoute("other", []string{"other.localhost"}, f.a.addr) // an unrelated switch: they wait on
	waitHeld(t, f.r, 3)
	f.r.SetRoute("web", []string{"web.localhost"}, f.b.addr)
	for i, ch := range got {
		if a := <-ch; a.err != nil || a.status != 200 || a.body != "B" {
			t.Errorf("held request %d: %d %q %v, want B's 200", i, a.status, a.body, a.err)
		}
	}

	f.r.SetUnavailable("web", []string{"web.localhost"}, 50*time.Millisecond, 3*time.Second)
	a := <-f.getAsync("/")
	if a.status != http.StatusServiceUnavailable {
		t.Fatalf("after the hold: %d %q, want 503", a.status, a.body)
	}
	start := time.Now()
	if a := <-f.getAsync("/"); a.status != http.StatusServiceUnavailable {
		t.Fatalf("after the hold: %d", a.status)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("a request after the hold waited %s", took)
	}
}

// Hostile clients: more waiting requests than MaxHeld get their 503 at once, and a
// client that goes away while held frees its place.
func TestUnavailableHoldIsBounded(t *testing.T) {
	r := New(Options{MaxHeld: 2})
	r.SetUnavailable("web", []string{"web.localhost"}, time.Minute, time.Second)
	base := startRouter(t, r)
	c := newClient(t)
	for range 2 {
		go get(t.Context(), c, base, "web.localhost", "/")
	}
	waitHeld(t, r, 2)
	start := time.Now()
	res, _, err := get(t.Context(), c, base, "web.localhost", "/")
	if err != nil || res.StatusCode != http.StatusServiceUnavailable || time.Since(start) > 5*time.Second {
		t.Fatalf("past MaxHeld: %v %v after %s, want a 503 at once", res, err, time.Since(start))
	}

	// A client that hangs up while held: its place frees.
	r2 := New(Options{MaxHeld: 1})
	r2.SetUnavailable("web", []string{"web.localhost"}, time.Minute, time.Second)
	srv := httptest.NewServer(r2)
	t.Cleanup(srv.Close)
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: web.localhost\r\n\r\n")
	waitHeld(t, r2, 1)
	conn.Close()
	waitHeld(t, r2, 0)
}

func waitHeld(t *testing.T, r *Router, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for r.held.Load() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests held, want %d", r.held.Load(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// The router counts each backend's answers by class, on the plain path, through
// ReverseProxy and for the 502s it makes itself.
func TestResponsesByClass(t *testing.T) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var code int
		fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/"), "%d", &code)
		w.WriteHeader(code)
	}))
	t.Cleanup(backend.Close)
	addr := backend.Listener.Addr().String()
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()

	r := New(Options{})
	r.SetRoute("web", []string{"web.localhost"}, addr)
	r.SetRoute("gone", []string{"gone.localhost"}, deadAddr)
	base := startRouter(t, r)
	c := newClient(t)
	for _, code := range []int{200, 204, 301, 404, 500, 503, 503} {
		if _, _, err := get(t.Context(), c, base, "web.localhost", fmt.Sprintf("/%d", code)); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/500", strings.NewReader("body"))
	req.Host = "web.localhost"
	if res, err := c.Do(req); err != nil || res.StatusCode != 500 {
		t.Fatalf("POST: %v %v", res, err)
	} else {
		res.Body.Close()
	}
	get(t.Context(), c, base, "gone.localhost", "/")

	if got, want := r.Responses(addr), [5]uint64{0, 2, 1, 1, 4}; got != want {
		t.Errorf("web's counts %v, want %v", got, want)
	}
	if got := r.Responses(deadAddr); got != [5]uint64{0, 0, 0, 0, 1} {
		t.Errorf("the dead backend's counts %v, want one 5xx (the router's 502)", got)
	}
	if got := r.Responses("127.0.0.1:1"); got != [5]uint64{} {
		t.Errorf("an unknown backend counts %v", got)
	}
}

// With RetryUnanswered, a GET its backend leaves wholly unanswered (refused, or
// accepted and closed: a container that just died behind Docker's port proxy) waits
// for the route to change and is served by the next backend; a POST, and a GET when
// nothing changes in time, get the 502.
func TestUnansweredRequestsFollowTheNextRoute(t *testing.T) {
	live := newTestBackend(t, "live")
	refused, _ := net.Listen("tcp", "127.0.0.1:0")
	refusedAddr := refused.Addr().String()
	refused.Close()
	for _, dead := range []string{refusedAddr, closingAddr(t)} {
		r := New(Options{RetryUnanswered: time.Minute})
		r.SetRoute("web", []string{"web.localhost"}, dead)
		base := startRouter(t, r)
		c := newClient(t)
		ch := getAsync(c, base, "web.localhost", "/")
		waitHeld(t, r, 1)
		r.SetRoute("web", []string{"web.localhost"}, live.addr)
		if a := <-ch; a.err != nil || a.status != 200 || a.body != "live" {
			t.Errorf("%s: %d %q %v, want live's answer", dead, a.status, a.body, a.err)
		}

		r.SetRoute("web", []string{"web.localhost"}, dead)
		req, _ := http.NewRequest(http.MethodPost, base+"/", strings.NewReader("x"))
		req.Host = "web.localhost"
		start := time.Now()
		res, err := c.Do(req)
		if err != nil || res.StatusCode != http.StatusBadGateway || time.Since(start) > 5*time.Second {
			t.Errorf("%s: POST got %v %v after %s, want a 502 at once", dead, res, err, time.Since(start))
		} else {
			res.Body.Close()
		}
	}

	r := New(Options{RetryUnanswered: 100 * time.Millisecond})
	r.SetRoute("web", []string{"web.localhost"}, refusedAddr)
	base := startRouter(t, r)
	res, _, err := get(t.Context(), newClient(t), base, "web.localhost", "/")
	if err != nil || res.StatusCode != http.StatusBadGateway {
		t.Fatalf("nothing changed: %v %v, want 502", res, err)
	}
	if got := r.Responses(refusedAddr); got[4] != 1 {
		t.Errorf("the 502 counts %v", got)
	}
}
