package edge

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Short limits, so that the test sees the server close what it must close; the daemon
// serves with the package's constants (TestNewServerDefaults).
var testServerOptions = ServerOptions{ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 3 * time.Second}

// closeSlack is how late, on a loaded 2-core machine under -race, the server may close
// a connection past its limit.
const closeSlack = 5 * time.Second

// startLimitedRouter serves a router for web.localhost through NewServer(opts) on a
// loopback listener and returns its address.
func startLimitedRouter(t *testing.T, opts ServerOptions) string {
	t.Helper()
	tb := newTestBackend(t, "A")
	r := New(Options{})
	r.SetRoute("web", []string{"web.localhost"}, tb.addr)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(r, opts)
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

func TestNewServerDefaults(t *testing.T) {
	srv := NewServer(http.NotFoundHandler(), ServerOptions{})
	if srv.ReadHeaderTimeout != ReadHeaderTimeout || srv.IdleTimeout != IdleTimeout || srv.MaxHeaderBytes != MaxHeaderBytes {
		t.Fatalf("server limits %s/%s/%d, want %s/%s/%d", srv.ReadHeaderTimeout, srv.IdleTimeout, srv.MaxHeaderBytes,
			ReadHeaderTimeout, IdleTimeout, MaxHeaderBytes)
	}
	if srv.ErrorLog == nil {
		t.Fatal("no ErrorLog: a stranger's failed TLS handshake would be printed to stderr")
	}
}

// hostileConn is one client that holds a connection the wrong way; closed is when the
// server hung up on it, measured from when its limit started to run.
type hostileConn struct {
	kind   string
	limit  time.Duration
	start  time.Time
	closed time.Duration
	err    error
}

// TestSlowAndIdleClientsDoNotStopOthers holds hundreds of connections open the wrong
// way (headers sent a byte at a time, headers never finished, nothing sent at all, a
// keep-alive connection left idle) while normal clients are served, then checks that
// the server closed every one of them within its limit.
func TestSlowAndIdleClientsDoNotStopOthers(t *testing.T) {
	opts := testServerOptions
	addr := startLimitedRouter(t, opts)
	const perKind = 75 // 300 connections in all
	kinds := []string{"trickle", "unfinished", "silent", "idle"}

	var conns []*hostileConn
	var wg sync.WaitGroup
	ready := make(chan struct{}, len(kinds)*perKind)
	stop := make(chan struct{})
	defer close(stop)
	for _, kind := range kinds {
		for range perKind {
			hc := &hostileConn{kind: kind, limit: opts.ReadHeaderTimeout}
			if kind == "idle" {
				hc.limit = opts.IdleTimeout
			}
			conns = append(conns, hc)
			wg.Go(func() { hc.run(addr, ready, stop) })
		}
	}
	for range conns {
		select {
		case <-ready:
		case <-time.After(30 * time.Second):
			t.Fatal("the hostile connections did not all get going within 30s")
		}
	}

	// Normal clients, while the server holds every hostile connection.
	c := newClient(t)
	base := "http://" + addr
	var served sync.WaitGroup
	errs := make(chan error, 100)
	for w := range 4 {
		served.Go(func() {
			for i := range 25 {
				t0 := time.Now()
				res, body, err := get(t.Context(), c, base, "web.localhost", fmt.Sprintf("/%d/%d", w, i))
				switch {
				case err != nil:
					errs <- err
				case res.StatusCode != http.StatusOK || body != "A":
					errs <- fmt.Errorf("status %d body %q", res.StatusCode, body)
				case time.Since(t0) > opts.ReadHeaderTimeout:
					errs <- fmt.Errorf("a normal request took %s: it waited for the slow ones", time.Since(t0))
				}
			}
		})
	}
	served.Wait()
	close(errs)
	for err := range errs {
		t.Error("normal client:", err)
	}

	wg.Wait()
	for _, hc := range conns {
		switch {
		case hc.err != nil:
			t.Errorf("%s connection: %v", hc.kind, hc.err)
		case hc.closed > hc.limit+closeSlack:
			t.Errorf("%s connection closed %s after its limit started, want within %s", hc.kind, hc.closed, hc.limit+closeSlack)
		case hc.closed < hc.limit-hc.limit/4:
			t.Errorf("%s connection closed after %s, before its limit of %s", hc.kind, hc.closed, hc.limit)
		}
	}
}

// run connects, misbehaves as hc.kind, signals ready once its limit runs, and waits
// for the server to close the connection.
func (hc *hostileConn) run(addr string, ready chan<- struct{}, stop <-chan struct{}) {
	signalled := false
	signal := func() {
		if !signalled {
			signalled = true
			ready <- struct{}{}
		}
	}
	defer signal()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		hc.err = err
		return
	}
	defer conn.Close()
	// The test fails, rather than hangs, if the server never closes it.
	conn.SetReadDeadline(time.Now().Add(hc.limit + closeSlack + 30*time.Second))
	br := bufio.NewReader(conn)
	hc.start = time.Now()
	switch hc.kind {
	case "trickle": // a valid request, one byte at a time, forever
		go func() {
			req := "GET / HTTP/1.1\r\nHost: web.localhost\r\nX-Slow: "
			for i := 0; ; i++ {
				b := byte('a') // the header's value, without end
				if i < len(req) {
					b = req[i]
				}
				if _, err := conn.Write([]byte{b}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}()
	case "unfinished": // headers that never end
		_, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: web.localhost\r\nX-Half: ")
	case "silent": // connects and says nothing
	case "idle": // one request on a keep-alive connection, then nothing
		if _, err = io.WriteString(conn, "GET / HTTP/1.1\r\nHost: web.localhost\r\n\r\n"); err != nil {
			break
		}
		var res *http.Response
		if res, err = http.ReadResponse(br, nil); err == nil {
			_, err = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if err == nil && res.StatusCode != http.StatusOK {
				err = fmt.Errorf("its one request got status %d", res.StatusCode)
			}
		}
		hc.start = time.Now() // idle from now on
	}
	if err != nil {
		hc.err = err
		return
	}
	signal()
	var got strings.Builder
	_, err = io.Copy(&got, br) // until the server hangs up
	hc.closed = time.Since(hc.start)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		hc.err = fmt.Errorf("still open after %s", hc.closed)
	case got.Len() > 0 && !strings.HasPrefix(got.String(), "HTTP/1.1 400 ") && !strings.HasPrefix(got.String(), "HTTP/1.1 408 "):
		// Hanging up on a request caught mid-line may come with a 400; anything
		// else means the server read a request that never ended.
		hc.err = fmt.Errorf("the server answered %q", got.String())
	}
}

// TestOversizedHeaderIs431: a client that sends a header block larger than the limit
// gets 431 and the connection closes, and the router stays fine for everyone else.
func TestOversizedHeaderIs431(t *testing.T) {
	addr := startLimitedRouter(t, ServerOptions{})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	// Written in the background: the server may answer and hang up mid-write.
	go io.WriteString(conn, "GET / HTTP/1.1\r\nHost: web.localhost\r\nX-Big: "+strings.Repeat("b", 2*MaxHeaderBytes)+"\r\n\r\n")
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal("no answer to an oversized header:", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized header: status %d, want 431", res.StatusCode)
	}
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("connection after 431: %v, want it closed", err)
	}

	// A header just under the limit is served.
	res2, body, err := get(t.Context(), newClient(t), "http://"+addr, "web.localhost", "/?"+strings.Repeat("q", MaxHeaderBytes/2))
	if err != nil || res2.StatusCode != http.StatusOK || body != "A" {
		t.Fatalf("a request under the limit: %v %v %q", err, res2, body)
	}
}

// TestSlowTLSClientsAreClosed: on an HTTPS listener the header timeout bounds the TLS
// handshake too: clients that never send a ClientHello, or stop halfway through one,
// are closed within it, while a normal client is served.
func TestSlowTLSClientsAreClosed(t *testing.T) {
	opts := testServerOptions
	tb := newTestBackend(t, "A")
	r := New(Options{})
	r.SetRoute("web", []string{"web.localhost"}, tb.addr)
	cert, roots := benchCertificate(t, "web.localhost")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(r, opts)
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().String()

	var wg sync.WaitGroup
	closed := make([]time.Duration, 40)
	for i := range closed {
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				closed[i] = -1
				return
			}
			defer conn.Close()
			t0 := time.Now()
			if i%2 == 1 { // the first bytes of a ClientHello record, then nothing
				conn.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01})
			}
			conn.SetReadDeadline(t0.Add(opts.ReadHeaderTimeout + closeSlack + 30*time.Second))
			io.Copy(io.Discard, conn)
			closed[i] = time.Since(t0)
		})
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "web.localhost", RootCAs: roots}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	req.Host = "web.localhost"
	res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal("a normal HTTPS client:", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.ProtoMajor != 2 || string(body) != "A" {
		t.Fatalf("a normal HTTPS client: %s %q", res.Proto, body)
	}
	wg.Wait()
	for i, d := range closed {
		if d < opts.ReadHeaderTimeout-opts.ReadHeaderTimeout/4 || d > opts.ReadHeaderTimeout+closeSlack {
			t.Errorf("slow TLS client %d closed after %s, want about %s", i, d, opts.ReadHeaderTimeout)
		}
	}
}
