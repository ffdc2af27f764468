package edge

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// rawRequest sends raw (a whole HTTP/1.1 request) to the router and returns the
// response with its body read; raw bytes let a test send what http.Client would not.
func rawRequest(t *testing.T, base, raw string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	method := strings.SplitN(raw, " ", 2)[0]
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(body)
}

// TestPlainRequestHeaders: hop-by-hop headers, those the Connection header names
// included, are dropped both ways; end-to-end ones, Host, the raw path and query and
// the forwarding headers reach the backend as they should.
func TestPlainRequestHeaders(t *testing.T) {
	var seen atomic.Pointer[http.Request]
	cb := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		seen.Store(r.Clone(context.Background()))
		h := w.Header()
		h.Set("Connection", "X-Hop-Res, x-other-hop")
		h.Set("X-Hop-Res", "1")
		h.Set("X-Other-Hop", "1")
		h.Set("Proxy-Authenticate", "Basic")
		h.Set("Upgrade", "h2c")
		h.Add("X-Multi", "a")
		h.Add("X-Multi", "b")
		io.WriteString(w, "ok")
	})
	_, base := routeTo(t, Options{}, cb.addr())

	const target = "/p%2Fa%20th/x;y?q=%zz&a=1;b=2&e=%2B+%26&&u=%E2%82%AC"
	res, body := rawRequest(t, base, "GET "+target+" HTTP/1.1\r\n"+
		"Host: Web.localhost:8080\r\n"+
		"Connection: keep-alive, X-Hop-Req, x-lower-hop\r\n"+
		"X-Hop-Req: 1\r\nX-Lower-Hop: 1\r\n"+
		"Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n"+
		"Forwarded: for=6.6.6.6\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Host: evil\r\nX-Forwarded-Proto: https\r\n"+
		"X-End: kept\r\nX-End: twice\r\n\r\n")
	if res.StatusCode != 200 || body != "ok" {
		t.Fatalf("got %d %q", res.StatusCode, body)
	}
	r := seen.Load()
	for _, h := range []string{"Connection", "X-Hop-Req", "X-Lower-Hop", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Forwarded"} {
		if v, ok := r.Header[h]; ok {
			t.Errorf("backend got hop-by-hop or spoofable header %s: %q", h, v)
		}
	}
	if got := r.Header["X-End"]; len(got) != 2 || got[0] != "kept" || got[1] != "twice" {
		t.Errorf("backend got X-End %q, want [kept twice]", got)
	}
	if got := r.Header.Get("User-Agent"); got != "" {
		t.Errorf("backend got User-Agent %q where the client sent none", got)
	}
	want := map[string]string{
		"Host":              "Web.localhost:8080",
		"RequestURI":        target,
		"X-Forwarded-For":   "127.0.0.1",
		"X-Forwarded-Host":  "Web.localhost:8080",
		"X-Forwarded-Proto": "http",
	}
	got := map[string]string{
		"Host":              r.Host,
		"RequestURI":        r.RequestURI,
		"X-Forwarded-For":   strings.Join(r.Header["X-Forwarded-For"], "|"),
		"X-Forwarded-Host":  strings.Join(r.Header["X-Forwarded-Host"], "|"),
		"X-Forwarded-Proto": strings.Join(r.Header["X-Forwarded-Proto"], "|"),
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("backend saw %s %q, want %q", k, got[k], v)
		}
	}

	for _, h := range []string{"X-Hop-Res", "X-Other-Hop", "Proxy-Authenticate", "Upgrade"} {
		if v, ok := res.Header[h]; ok {
			t.Errorf("client got hop-by-hop response header %s: %q", h, v)
		}
	}
	if got := res.Header["X-Multi"]; len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("client got X-Multi %q, want [a b]", got)
	}

	// The router's own client-side connection stays usable: the request above
	// returned the backend connection to the pool.
	if res, body := rawRequest(t, base, "GET /again HTTP/1.1\r\nHost: web.localhost\r\nUser-Agent: probe/1\r\n\r\n"); res.StatusCode != 200 || body != "ok" {
		t.Fatalf("second request: %d %q", res.StatusCode, body)
	}
	if got := seen.Load().Header.Get("User-Agent"); got != "probe/1" {
		t.Errorf("backend got User-Agent %q, want the client's probe/1", got)
	}
	if n := cb.opened.Load(); n != 1 {
		t.Errorf("backend connections opened: %d, want 1 kept alive", n)
	}
}

// TestPlainResponsesWithoutBody: HEAD keeps the backend's Content-Length with no body,
// 204 and 304 carry none, and the backend connection serves the next request.
func TestPlainResponsesWithoutBody(t *testing.T) {
	cb := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "11")
			io.WriteString(w, "hello world")
		}
	})
	_, base := routeTo(t, Options{}, cb.addr())

	tests := []struct {
		method, path string
		status       int
		length       int64
		body         string
	}{
		{http.MethodHead, "/", 200, 11, ""},
		{http.MethodGet, "/", 200, 11, "hello world"},
		{http.MethodGet, "/204", 204, 0, ""},
		{http.MethodGet, "/304", 304, -1, ""},
		{http.MethodHead, "/", 200, 11, ""},
	}
	for _, tt := range tests {
		res, body := rawRequest(t, base, tt.method+" "+tt.path+" HTTP/1.1\r\nHost: web.localhost\r\n\r\n")
		if res.StatusCode != tt.status || body != tt.body {
			t.Errorf("%s %s: got %d %q, want %d %q", tt.method, tt.path, res.StatusCode, body, tt.status, tt.body)
		}
		if tt.length >= 0 && res.ContentLength != tt.length {
			t.Errorf("%s %s: Content-Length %d, want %d", tt.method, tt.path, res.ContentLength, tt.length)
		}
		if tt.status == 304 && res.Header.Get("ETag") != `"v1"` {
			t.Errorf("304 lost its ETag: %q", res.Header)
		}
	}
	if n := cb.opened.Load(); n != 1 {
		t.Errorf("backend connections opened: %d, want 1 kept alive", n)
	}
}

// TestPlainChunkedAndTrailers: a body of unknown length goes through chunked and write
// by write; announced trailers arrive as trailers, unannounced ones too.
func TestPlainChunkedAndTrailers(t *testing.T) {
	next := make(chan struct{})
	cb := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, "part one;")
			http.NewResponseController(w).Flush()
			select {
			case <-next:
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, "part two")
		case "/trailers":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "abc")
			w.Header().Set(http.TrailerPrefix+"X-Late", "late")
		}
	})
	_, base := routeTo(t, Options{}, cb.addr())
	c := newClient(t)

	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/chunked", nil)
	req.Host = "web.localhost"
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.ContentLength != -1 || len(res.TransferEncoding) != 1 || res.TransferEncoding[0] != "chunked" {
		t.Errorf("Content-Length %d, Transfer-Encoding %q: want a chunked body", res.ContentLength, res.TransferEncoding)
	}
	first := make([]byte, len("part one;"))
	if _, err := io.ReadFull(res.Body, first); err != nil || string(first) != "part one;" {
		t.Fatalf("first part while the backend waits: %q %v", first, err)
	}
	close(next)
	if rest, err := io.ReadAll(res.Body); err != nil || string(rest) != "part two" {
		t.Fatalf("rest: %q %v", rest, err)
	}

	req, _ = http.NewRequestWithContext(t.Context(), http.MethodGet, base+"/trailers", nil)
	res, body := do(t, c, req)
	if body != "body" {
		t.Fatalf("body %q", body)
	}
	if got := res.Trailer.Get("X-Sum"); got != "abc" {
		t.Errorf("announced trailer X-Sum = %q, want abc", got)
	}
	if got := res.Trailer.Get("X-Late"); got != "late" {
		t.Errorf("unannounced trailer X-Late = %q, want late", got)
	}
}

// TestPlainClientCancelMidBody: a client that leaves while the body streams closes
// the backend's connection too, and the request leaves the in-flight count.
func TestPlainClientCancelMidBody(t *testing.T) {
	gone := make(chan struct{})
	cb := newCountingBackend(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "start")
		http.NewResponseController(w).Flush()
		select {
		case <-r.Context().Done():
			close(gone)
		case <-time.After(10 * time.Second):
		}
	})
	r, base := routeTo(t, Options{}, cb.addr())

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/", nil)
	req.Host = "web.localhost"
	res, err := newClient(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if _, err := io.ReadFull(res.Body, make([]byte, 5)); err != nil {
		t.Fatal(err)
	}
	if n := r.inFlight(cb.addr()); n != 1 {
		t.Errorf("InFlight = %d while the body streams, want 1", n)
	}
	cancel()
	select {
	case <-gone:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend did not see the client leave mid-body")
	}
	waitFor(t, func() bool { return r.inFlight(cb.addr()) == 0 }, "in-flight count back to 0")
}

func TestIsPlainRequest(t *testing.T) {
	tests := []struct {
		method string
		header http.Header
		body   io.Reader
		want   bool
	}{
		{http.MethodGet, nil, nil, true},
		{http.MethodHead, http.Header{"Connection": {"keep-alive, X-Foo"}}, nil, true},
		{http.MethodPost, nil, nil, false},
		{http.MethodGet, nil, strings.NewReader("x"), false},
		{http.MethodGet, http.Header{"Upgrade": {"websocket"}}, nil, false},
		{http.MethodGet, http.Header{"Connection": {"keep-alive, Upgrade"}}, nil, false},
		{http.MethodGet, http.Header{"Expect": {"100-continue"}}, nil, false},
		{http.MethodGet, http.Header{"Te": {"trailers"}}, nil, false},
		{http.MethodGet, http.Header{"Trailer": {"X-Sum"}}, nil, false},
	}
	for _, tt := range tests {
		req, _ := http.NewRequest(tt.method, "http://web.localhost/", tt.body)
		for k, v := range tt.header {
			req.Header[k] = v
		}
		if got := isPlainRequest(req); got != tt.want {
			t.Errorf("isPlainRequest(%s %v body=%v) = %v, want %v", tt.method, tt.header, tt.body != nil, got, tt.want)
		}
	}
	// Over HTTP/2 the server gives every request the stream as its body; a GET
	// whose stream ended with its headers has ContentLength 0, and is plain. Over
	// HTTP/1 a body that is not http.NoBody means one may follow.
	for _, tt := range []struct {
		major  int
		length int64
		want   bool
	}{{2, 0, true}, {2, -1, false}, {2, 5, false}, {1, 0, false}} {
		req, _ := http.NewRequest(http.MethodGet, "http://web.localhost/", io.NopCloser(strings.NewReader("")))
		req.ProtoMajor, req.ContentLength = tt.major, tt.length
		if got := isPlainRequest(req); got != tt.want {
			t.Errorf("isPlainRequest(GET over HTTP/%d, ContentLength %d, a stream body) = %v, want %v", tt.major, tt.length, got, tt.want)
		}
	}
}

// TestWriteHeadMatchesRequestWrite: the backend reads the same request from writeHead
// as from req.Write, fallbacks included.
func TestWriteHeadMatchesRequestWrite(t *testing.T) {
	tests := []struct {
		method, url, host string
		header            http.Header
	}{
		{"GET", "http://127.0.0.1:1/a%2Fb/c?x=%zz&y=1;2", "web.localhost:8080", http.Header{"X-A": {"1", " 2 "}, "User-Agent": {""}}},
		{"HEAD", "http://127.0.0.1:1/", "", http.Header{"User-Agent": {"ua\r\nX-Injected: 1"}, "Trailer": {"X"}, "Content-Length": {"5"}}},
		{"GET", "http://127.0.0.1:1/", "bücher.example", http.Header{"Bad Name": {"v"}, "X-B": {"a\nb"}}},
		{"GET", "http://127.0.0.1:1/", "[fe80::1%25en0]:80", nil},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, tt.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tt.host
		for k, v := range tt.header {
			req.Header[k] = v
		}
		var fast, std strings.Builder
		bw := bufio.NewWriter(&fast)
		if err := writeHead(context.Background(), bw, req); err != nil {
			t.Fatal(err)
		}
		bw.Flush()
		if err := req.Write(&std); err != nil {
			t.Fatal(err)
		}
		a, errA := http.ReadRequest(bufio.NewReader(strings.NewReader(fast.String())))
		b, errB := http.ReadRequest(bufio.NewReader(strings.NewReader(std.String())))
		if errA != nil || errB != nil {
			t.Fatalf("%s %s: parse: %v / %v", tt.method, tt.url, errA, errB)
		}
		if a.Method != b.Method || a.RequestURI != b.RequestURI || a.Host != b.Host || a.ContentLength != b.ContentLength ||
			fmt.Sprint(a.Header) != fmt.Sprint(b.Header) {
			t.Errorf("writeHead wrote\n%q\nreq.Write wrote\n%q", fast.String(), std.String())
		}
	}
}

func TestStreams(t *testing.T) {
	tests := []struct {
		ct     string
		length int64
		want   bool
	}{
		{"text/html", 10, false},
		{"text/event-stream", 10, true},
		{" Text/Event-Stream ; charset=utf-8", 10, true},
		{"application/x-text/event-stream", 10, false},
		{"", -1, true},
		{"text/html", -1, true},
	}
	for _, tt := range tests {
		res := &http.Response{Header: http.Header{"Content-Type": {tt.ct}}, ContentLength: tt.length}
		if got := streams(res); got != tt.want {
			t.Errorf("streams(%q, length %d) = %v, want %v", tt.ct, tt.length, got, tt.want)
		}
	}
}

// TestHTTP2GetsShareBackendConnections: a GET that reaches the edge over HTTP/2 takes
// the plain path, on pooled keep-alive connections to the backend, not a connection
// of its own each (the path of requests with bodies).
func TestHTTP2GetsShareBackendConnections(t *testing.T) {
	var accepted atomic.Int64
	backend := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok "+r.Method)
	}))
	backend.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	backend.Start()
	defer backend.Close()

	r := New(Options{})
	r.SetRoute("web", []string{"web.localhost"}, backend.Listener.Addr().String())
	edge := httptest.NewUnstartedServer(r)
	edge.EnableHTTP2 = true
	edge.StartTLS()
	defer edge.Close()
	client := edge.Client()

	const n = 40
	for i := range n {
		method := http.MethodGet
		if i%2 == 1 {
			method = http.MethodHead
		}
		req, _ := http.NewRequest(method, edge.URL+"/", nil)
		req.Host = "web.localhost"
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.ProtoMajor != 2 || res.StatusCode != http.StatusOK {
			t.Fatalf("%s over %s: %s", method, res.Proto, res.Status)
		}
	}
	if got := accepted.Load(); got > 2 {
		t.Fatalf("%d requests over HTTP/2 opened %d backend connections: the plain path pools them", n, got)
	}
	// A body still goes the other way, and arrives.
	req, _ := http.NewRequest(http.MethodPost, edge.URL+"/", strings.NewReader("a body"))
	req.Host = "web.localhost"
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "ok POST" {
		t.Fatalf("POST over HTTP/2 answered %q", body)
	}
}
