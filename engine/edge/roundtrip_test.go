package edge

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingBackend serves h and counts the connections the router opened and closed.
type countingBackend struct {
	srv            *httptest.Server
	opened, closed atomic.Int32
}

func newCountingBackend(t *testing.T, h http.HandlerFunc) *countingBackend {
	t.Helper()
	cb := &countingBackend{srv: httptest.NewUnstartedServer(h)}
	cb.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			cb.opened.Add(1)
		case http.StateClosed, http.StateHijacked:
			cb.closed.Add(1)
		}
	}
	cb.srv.Start()
	t.Cleanup(cb.srv.Close)
	return cb
}

func (cb *countingBackend) addr() string { return cb.srv.Listener.Addr().String() }

// routeTo serves web.localhost from backend through a new router and returns its base URL.
func routeTo(t *testing.T, opts Options, backend string) (*Router, string) {
	t.Helper()
	r := New(opts)
	r.SetRoute("web", []string{"web.localhost"}, backend)
	return r, startRouter(t, r)
}

func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, string) {
	t.Helper()
	req.Host = "web.localhost"
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

func TestHopByHopHeadersStripped(t *testing.T) {
	var seen atomic.Pointer[http.Header]
	cb := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		seen.Store(&h)
		w.Header().Set("Connection", "X-Internal")
		w.Header().Set("X-Internal", "secret")
		w.Header().Set("Keep-Alive", "timeout=5")
		w.Header().Set("X-Kept", "yes")
		io.WriteString(w, "ok")
	})
	_, base := routeTo(t, Options{}, cb.addr())

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/", nil)
	req.Header.Set("Connection", "X-Secret")
	req.Header.Set("X-Secret", "client-only")
	req.Header.Set("Keep-Alive", "timeout=9")
	req.Header.Set("Proxy-Connection", "keep-alive")
	req.Header.Set("X-Kept-Req", "yes")
	res, body := do(t, newClient(t), req)
	if res.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	got := *seen.Load()
	for _, h := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection", "Connection"} {
		if v := got.Get(h); v != "" {
			t.Errorf("backend got hop-by-hop request header %s: %q", h, v)
		}
	}
	if got.Get("X-Kept-Req") != "yes" {
		t.Error("backend lost an end-to-end request header")
	}
	for _, h := range []string{"X-Internal", "Keep-Alive"} {
		if v := res.Header.Get(h); v != "" {
			t.Errorf("client got hop-by-hop response header %s: %q", h, v)
		}
	}
	if res.Header.Get("X-Kept") != "yes" {
		t.Error("client lost an end-to-end response header")
	}
}

func TestTrailersPassThrough(t *testing.T) {
	var te atomic.Value
	cb := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		te.Store(r.Header.Get("Te"))
		w.Header().Set("Trailer", "X-Checksum")
		io.WriteString(w, "body")
		w.Header().Set("X-Checksum", "abc123")
	})
	_, base := routeTo(t, Options{}, cb.addr())

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/", nil)
	req.Header.Set("Te", "trailers")
	res, body := do(t, newClient(t), req)
	if body != "body" {
		t.Fatalf("body %q", body)
	}
	if got := res.Trailer.Get("X-Checksum"); got != "abc123" {
		t.Errorf("trailer X-Checksum = %q, want abc123", got)
	}
	if got := te.Load(); got != "trailers" {
		t.Errorf("backend got Te %q, want trailers", got)
	}
}

func TestEarlyHintsForwarded(t *testing.T) {
	cb := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</app.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		io.WriteString(w, "page")
	})
	_, base := routeTo(t, Options{}, cb.addr())

	var hints []int
	var link string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, code)
		link = h.Get("Link")
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), http.MethodGet, base+"/", nil)
	res, body := do(t, newClient(t), req)
	if res.StatusCode != 200 || body != "page" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	if len(hints) != 1 || hints[0] != http.StatusEarlyHints || link != "</app.css>; rel=preload" {
		t.Errorf("1xx seen by the client: %v, Link %q; want [103] with the backend's Link", hints, link)
	}
}

func TestClientCancelReachesBackend(t *testing.T) {
	started, cancelled := make(chan struct{}), make(chan struct{})
	cb := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(cancelled)
		case <-time.After(10 * time.Second):
		}
	})
	r, base := routeTo(t, Options{}, cb.addr())

	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
		req.Host = "web.localhost"
		res, err := newClient(t).Do(req)
		if err == nil {
			res.Body.Close()
		}
		errc <- err
	}()
	<-started
	cancel()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's request was not cancelled when the client went away")
	}
	if err := <-errc; err == nil {
		t.Error("cancelled request succeeded")
	}
	waitFor(t, func() bool { return r.inFlight(cb.addr()) == 0 }, "in-flight count back to 0")
}

func TestKeepAliveReuseAndStaleConnectionRetry(t *testing.T) {
	cb := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/empty" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		io.WriteString(w, "hello")
	})
	_, base := routeTo(t, Options{}, cb.addr())
	c := newClient(t)

	for i := range 30 {
		method, path, want := http.MethodGet, "/", "hello"
		switch i % 3 {
		case 1:
			method, want = http.MethodHead, ""
		case 2:
			path, want = "/empty", ""
		}
		req, _ := http.NewRequestWithContext(t.Context(), method, base+path, nil)
		if res, body := do(t, c, req); res.StatusCode >= 300 || body != want {
			t.Fatalf("%s %s: got %d %q, want %q", method, path, res.StatusCode, body, want)
		}
	}
	if n := cb.opened.Load(); n != 1 {
		t.Fatalf("sequential requests opened %d backend connections, want 1 kept alive", n)
	}

	// The backend drops its keep-alive connection; the router's pooled copy is stale.
	cb.srv.CloseClientConnections()
	waitFor(t, func() bool { return cb.closed.Load() == 1 }, "backend closed its connection")
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/", nil)
	if res, body := do(t, c, req); res.StatusCode != 200 || body != "hello" {
		t.Fatalf("request on a stale pooled connection: got %d %q, want it sent again on a new one", res.StatusCode, body)
	}
	if n := cb.opened.Load(); n != 2 {
		t.Errorf("backend connections opened: %d, want 2", n)
	}
}

func TestIdleConnectionsClosedAfterIdleTimeout(t *testing.T) {
	cb := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hi") })
	_, base := routeTo(t, Options{IdleConnTimeout: 50 * time.Millisecond}, cb.addr())
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/", nil)
	do(t, newClient(t), req)
	waitFor(t, func() bool { return cb.closed.Load() == 1 }, "idle backend connection closed")
}

func TestResponseHeaderTimeoutAnswers504(t *testing.T) {
	tb := newTestBackend(t, "slow")
	_, base := routeTo(t, Options{ResponseHeaderTimeout: 100 * time.Millisecond}, tb.addr)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/slow", nil)
	if res, body := do(t, newClient(t), req); res.StatusCode != http.StatusGatewayTimeout || body != "gateway timeout\n" {
		t.Fatalf("got %d %q, want 504", res.StatusCode, body)
	}
}

func TestRequestBodyReachesBackend(t *testing.T) {
	cb := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, r.Method+" "+string(body))
	})
	_, base := routeTo(t, Options{}, cb.addr())
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/", strings.NewReader("payload"))
	if res, body := do(t, newClient(t), req); res.StatusCode != 200 || body != "POST payload" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
}
