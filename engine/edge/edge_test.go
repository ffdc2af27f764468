package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clank-dev/clank/internal/testnet"
)

func TestRouting(t *testing.T) {
	web := newTestBackend(t, "web")
	api := newTestBackend(t, "api")
	deadAddr := testnet.RefusedAddr(t)

	r := New(Options{})
	r.SetRoute("web", []string{"web.localhost", "WWW.Example.com"}, web.addr)
	r.SetRoute("api", []string{"api.localhost"}, api.addr)
	r.SetRoute("down", []string{"down.localhost"}, "")
	r.SetRoute("gone", []string{"gone.localhost"}, deadAddr)
	base := startRouter(t, r)
	c := newClient(t)

	tests := []struct {
		host       string
		wantStatus int
		wantBody   string
	}{
		{"web.localhost", 200, "web"},
		{"web.localhost:8080", 200, "web"},
		{"www.example.com", 200, "web"},
		{"WWW.EXAMPLE.COM:443", 200, "web"},
		{"www.example.com.", 200, "web"},
		{"api.localhost", 200, "api"},
		{"nope.localhost", 404, "no service for this host\n"},
		{"localhost", 404, "no service for this host\n"},
		{"down.localhost", 503, "service unavailable: no healthy deployment\n"},
		{"gone.localhost", 502, "bad gateway\n"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			res, body, err := get(t.Context(), c, base, tt.host, "/")
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != tt.wantStatus || body != tt.wantBody {
				t.Fatalf("got %d %q, want %d %q", res.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestForwardedHeadersAndHost(t *testing.T) {
	f := newBlueGreen(t)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.base+"/?a=1;b=2&c=3", nil)
	req.Host = "web.localhost:8080"
	req.Header.Set("X-Forwarded-For", "6.6.6.6") // a client must not be able to spoof these
	req.Header.Set("X-Forwarded-Host", "evil.example")
	res, err := f.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()

	want := map[string]string{
		"X-Seen-Host":            "web.localhost:8080",
		"X-Seen-Forwarded-For":   "127.0.0.1",
		"X-Seen-Forwarded-Host":  "web.localhost:8080",
		"X-Seen-Forwarded-Proto": "http",
		"X-Seen-Query":           "a=1;b=2&c=3",
	}
	for k, v := range want {
		if got := res.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestSetRouteRemoveRouteAndRoutes(t *testing.T) {
	r := New(Options{})
	if prev := r.SetRoute("web", []string{"web.localhost", "a.example"}, "127.0.0.1:1001"); prev != nil {
		t.Fatalf("first SetRoute returned previous %q, want none", prev)
	}
	if prev := r.SetRoute("web", []string{"web.localhost"}, "127.0.0.1:1002"); !slices.Equal(prev, []string{"127.0.0.1:1001"}) {
		t.Fatalf("SetRoute returned previous %q, want 127.0.0.1:1001", prev)
	}
	r.SetRoute("api", []string{"api.localhost", "web.localhost"}, "") // takes web.localhost over

	routes := r.routes()
	want := map[string]string{"api.localhost": "", "web.localhost": ""}
	if len(routes) != len(want) || routes["api.localhost"] != "" || routes["web.localhost"] != "" {
		t.Fatalf("Routes() = %v, want %v", routes, want)
	}
	routes["x.localhost"] = "mutated" // a copy: the router must not see this
	if _, ok := r.routes()["x.localhost"]; ok {
		t.Fatal("Routes() returned the router's own map")
	}

	if prev := r.SetRoute("web", []string{"web.localhost"}, "127.0.0.1:1003"); !slices.Equal(prev, []string{"127.0.0.1:1002"}) {
		t.Fatalf("SetRoute returned previous %q, want 127.0.0.1:1002", prev)
	}
	if got := r.routes()["web.localhost"]; got != "127.0.0.1:1003" {
		t.Fatalf("web.localhost -> %q after taking it back, want 127.0.0.1:1003", got)
	}
	r.RemoveRoute("web")
	r.RemoveRoute("never-existed")
	if got := r.routes(); len(got) != 1 || got["api.localhost"] != "" {
		t.Fatalf("Routes() after RemoveRoute = %v, want only api.localhost", got)
	}
	if n := r.inFlight("127.0.0.1:1003"); n != 0 {
		t.Fatalf("InFlight of an idle backend = %d", n)
	}
}

// TestSwitchUnderLoad switches a service back and forth between two backends while
// 32 clients send requests in a closed loop: no request may fail, and a request sent
// while no switch was under way must be answered by the backend then routed.
func TestSwitchUnderLoad(t *testing.T) {
	f := newBlueGreen(t)
	a, b, r, base, c := f.a, f.b, f.r, f.base, f.c

	// epoch is even when no SetRoute is running; routed[epoch/2] is who serves then.
	var epoch atomic.Int64
	routed := []string{"A"}
	var routedMu sync.Mutex
	current := func(e int64) string {
		routedMu.Lock()
		defer routedMu.Unlock()
		return routed[e/2]
	}

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	var requests, failures, transportErrors, misrouted atomic.Int64
	var firstErr atomic.Value
	for range 32 {
		wg.Go(func() {
			for ctx.Err() == nil {
				before := epoch.Load()
				res, body, err := get(context.Background(), c, base, "web.localhost", "/")
				after := epoch.Load()
				requests.Add(1)
				switch {
				case err != nil:
					transportErrors.Add(1)
					firstErr.CompareAndSwap(nil, err)
				case res.StatusCode/100 != 2:
					failures.Add(1)
				case before%2 == 0 && before == after && body != current(before):
					misrouted.Add(1)
				}
			}
		})
	}

	// Switch every perSwitch requests, so that load overlaps every switch however fast
	// or slow the machine is.
	const switches, perSwitch = 40, 50
	for i := range switches {
		waitFor(t, func() bool { return requests.Load() >= int64(i+1)*perSwitch }, "requests between switches")
		next, name := b.addr, "B"
		if i%2 == 1 {
			next, name = a.addr, "A"
		}
		epoch.Add(1)
		r.SetRoute("web", []string{"web.localhost"}, next)
		routedMu.Lock()
		routed = append(routed, name)
		routedMu.Unlock()
		epoch.Add(1)
	}
	waitFor(t, func() bool { return requests.Load() >= (switches+1)*perSwitch }, "requests after the last switch")
	cancel()
	wg.Wait()

	t.Logf("%d requests across %d switches", requests.Load(), switches)
	if n := transportErrors.Load(); n != 0 {
		t.Errorf("%d transport errors, first: %v", n, firstErr.Load())
	}
	if n := failures.Load(); n != 0 {
		t.Errorf("%d non-2xx answers", n)
	}
	if n := misrouted.Load(); n != 0 {
		t.Errorf("%d requests sent after a switch were answered by the old backend", n)
	}
}

// TestInFlightFinishesOnOldBackend: a request that started on A completes with A's
// answer after the switch to B, while new requests already go to B.
func TestInFlightFinishesOnOldBackend(t *testing.T) {
	f := newBlueGreen(t)
	a, b, r, base, c := f.a, f.b, f.r, f.base, f.c

	slow := f.getAsync("/slow")
	<-a.started

	if prev := r.SetRoute("web", []string{"web.localhost"}, b.addr); !slices.Equal(prev, []string{a.addr}) {
		t.Fatalf("SetRoute returned previous %q, want %q", prev, a.addr)
	}
	if n := r.inFlight(a.addr); n != 1 {
		t.Fatalf("inFlight(A) = %d after the switch, want 1", n)
	}
	if _, body, err := get(t.Context(), c, base, "web.localhost", "/"); err != nil || body != "B" {
		t.Fatalf("new request after the switch: %q %v, want B", body, err)
	}

	drained := make(chan error, 2) // two drains of the same backend must both return
	for range 2 {
		go func() { drained <- r.Drain(context.Background(), a.addr) }()
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v while a request was still on A", err)
	case <-time.After(100 * time.Millisecond):
	}

	close(a.release)
	if ans := <-slow; ans.err != nil || ans.body != "A" {
		t.Fatalf("slow request answered %q %v, want A", ans.body, ans.err)
	}
	for range 2 {
		select {
		case err := <-drained:
			if err != nil {
				t.Fatalf("Drain: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Drain did not return after the last request on A ended")
		}
	}
	if n := r.inFlight(a.addr); n != 0 {
		t.Fatalf("inFlight(A) = %d after Drain, want 0", n)
	}
}

func TestDrainUnknownBackendReturnsAtOnce(t *testing.T) {
	r := New(Options{})
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := r.Drain(ctx, "127.0.0.1:9"); err != nil {
		t.Fatalf("Drain of a backend with nothing in flight: %v", err)
	}
}

// TestWebSocketSurvivesSwitchUntilDrainEnds: an upgraded connection opened on A keeps
// echoing after the switch to B, counts as in flight on A, and is closed when the
// drain's deadline passes; Drain then reports the deadline.
func TestWebSocketSurvivesSwitchUntilDrainEnds(t *testing.T) {
	f := newBlueGreen(t)
	a, b, r, base := f.a, f.b, f.r, f.base

	ws := dialWS(t, base, "web.localhost")
	if got, err := ws.roundTrip("hello"); err != nil || got != "hello" {
		t.Fatalf("echo before the switch: %q %v", got, err)
	}

	r.SetRoute("web", []string{"web.localhost"}, b.addr)
	if got, err := ws.roundTrip("still there"); err != nil || got != "still there" {
		t.Fatalf("echo after the switch: %q %v", got, err)
	}
	if n := r.inFlight(a.addr); n != 1 {
		t.Fatalf("inFlight(A) = %d with a WebSocket open, want 1", n)
	}
	if _, body, err := get(t.Context(), newClient(t), base, "web.localhost", "/"); err != nil || body != "B" {
		t.Fatalf("new request after the switch: %q %v, want B", body, err)
	}

	// The deadline leaves the echo below ample time on a loaded machine.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
	defer cancel()
	drained := make(chan error, 1)
	go func() { drained <- r.Drain(ctx, a.addr) }()

	waitFor(t, func() bool { return r.draining(a.addr) }, "the drain of A to begin")
	if got, err := ws.roundTrip("during drain"); err != nil || got != "during drain" {
		t.Fatalf("echo during the drain: %q %v", got, err)
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned %v before its deadline with a WebSocket open", err)
	default:
	}

	err := <-drained
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain = %v, want an error wrapping context.DeadlineExceeded", err)
	}
	var de *DrainError
	if !errors.As(err, &de) || de.Backend != a.addr {
		t.Fatalf("Drain = %#v, want a *DrainError for %s", err, a.addr)
	}

	ws.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(ws, "x")
	if n, err := ws.r.Read(make([]byte, 1)); err == nil {
		t.Fatalf("read %d bytes on a connection the drain closed", n)
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the drain did not close the upgraded connection")
	}
	waitFor(t, func() bool { return r.inFlight(a.addr) == 0 }, "inFlight(A) to reach 0 after the forced close")
}

// TestDrainDeadlineFailsStuckRequest: a plain request still waiting on the old backend
// when the drain ends is cut off with 502 rather than left hanging.
func TestDrainDeadlineFailsStuckRequest(t *testing.T) {
	f := newBlueGreen(t)
	a, b, r, base, c := f.a, f.b, f.r, f.base, f.c

	stuck := f.getAsync("/slow")
	<-a.started
	r.SetRoute("web", []string{"web.localhost"}, b.addr)

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := r.Drain(ctx, a.addr); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Drain = %v, want context.DeadlineExceeded", err)
	}
	select {
	case ans := <-stuck:
		if ans.err != nil || ans.status != http.StatusBadGateway {
			t.Fatalf("stuck request got %d %v, want 502", ans.status, ans.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stuck request did not end when the drain closed its backend")
	}

	// A rollback may route to the drained address again: it must serve.
	r.SetRoute("web", []string{"web.localhost"}, a.addr)
	res, body, err := get(t.Context(), c, base, "web.localhost", "/")
	if err != nil {
		t.Fatal("after routing back to the drained backend:", err)
	}
	if res.StatusCode != 200 || body != "A" {
		t.Fatalf("after routing back to the drained backend: %d %q, want 200 A", res.StatusCode, body)
	}
}

// TestServerSentEventsStream: the client reads the first event while the backend still
// holds the stream open, so the router does not buffer it.
func TestServerSentEventsStream(t *testing.T) {
	f := newBlueGreen(t)
	a, r := f.a, f.r

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, f.base+"/sse", nil)
	req.Host = "web.localhost"
	res, err := f.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()

	br := bufio.NewReader(res.Body)
	first := make(chan string, 1)
	go func() {
		line, _ := br.ReadString('\n')
		first <- line
	}()
	select {
	case line := <-first:
		if line != "data: first\n" {
			t.Fatalf("first line %q", line)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("first event did not arrive while the stream was open")
	}
	if n := r.inFlight(a.addr); n != 1 {
		t.Fatalf("InFlight = %d during the stream, want 1", n)
	}

	close(a.release)
	rest, err := io.ReadAll(br)
	if err != nil || !strings.Contains(string(rest), "data: last") {
		t.Fatalf("rest of the stream: %q %v", rest, err)
	}
}

// draining says whether a Drain of backend is under way.
func (r *Router) draining(backend string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.backends[backend]
	return b != nil && b.drainers.Load() > 0
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second) // generous: a loaded machine under -race
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
