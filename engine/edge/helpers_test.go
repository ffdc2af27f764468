package edge

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testBackend is a service container stand-in: it answers with its name, reports the
// request headers the router sent, and has a slow, a WebSocket-like and an SSE path.
type testBackend struct {
	name    string
	addr    string
	started chan struct{} // one value per /slow request that arrived
	release chan struct{} // close to let /slow and /sse requests finish
}

func newTestBackend(t *testing.T, name string) *testBackend {
	t.Helper()
	tb := &testBackend{name: name, started: make(chan struct{}, 16), release: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(tb.serve))
	t.Cleanup(func() {
		select {
		case <-tb.release:
		default:
			close(tb.release)
		}
		srv.Close()
	})
	tb.addr = srv.Listener.Addr().String()
	return tb
}

func (tb *testBackend) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/slow":
		tb.started <- struct{}{}
		<-tb.release
	case "/sse":
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		http.NewResponseController(w).Flush()
		<-tb.release
		io.WriteString(w, "data: last\n\n")
		return
	case "/ws":
		tb.echo(w, r)
		return
	}
	h := w.Header()
	h.Set("X-Seen-Host", r.Host)
	h.Set("X-Seen-Forwarded-For", r.Header.Get("X-Forwarded-For"))
	h.Set("X-Seen-Forwarded-Host", r.Header.Get("X-Forwarded-Host"))
	h.Set("X-Seen-Forwarded-Proto", r.Header.Get("X-Forwarded-Proto"))
	h.Set("X-Seen-Query", r.URL.RawQuery)
	io.WriteString(w, tb.name)
}

// echo switches to a raw byte stream and echoes it back: enough of WebSocket for a
// proxy, which only sees an Upgrade followed by bytes both ways.
func (tb *testBackend) echo(w http.ResponseWriter, r *http.Request) {
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "upgrade required", http.StatusUpgradeRequired)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	brw.Flush()
	buf := make([]byte, 512)
	for {
		n, err := brw.Read(buf)
		if err != nil {
			return
		}
		if _, err := conn.Write(buf[:n]); err != nil {
			return
		}
	}
}

// blueGreen is a router serving web.localhost from backend A, with B ready to take
// over, and a client for the router.
type blueGreen struct {
	a, b *testBackend
	r    *Router
	base string
	c    *http.Client
}

func newBlueGreen(t *testing.T) *blueGreen {
	t.Helper()
	f := &blueGreen{a: newTestBackend(t, "A"), b: newTestBackend(t, "B"), r: New(Options{}), c: newClient(t)}
	f.r.SetRoute("web", []string{"web.localhost"}, f.a.addr)
	f.base = startRouter(t, f.r)
	return f
}

type answer struct {
	status int
	body   string
	err    error
}

// getAsync sends GET path for web.localhost in the background; the answer arrives on
// the channel.
func (f *blueGreen) getAsync(path string) <-chan answer {
	return getAsync(f.c, f.base, "web.localhost", path)
}

// getAsync sends GET base+path for host in the background; the answer arrives on
// the channel.
func getAsync(c *http.Client, base, host, path string) <-chan answer {
	ch := make(chan answer, 1)
	go func() {
		res, body, err := get(context.Background(), c, base, host, path)
		if err != nil {
			ch <- answer{err: err}
			return
		}
		ch <- answer{status: res.StatusCode, body: body}
	}()
	return ch
}

// startRouter serves r on a loopback listener and returns its base URL.
func startRouter(t *testing.T, r *Router) string {
	t.Helper()
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL
}

func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// get sends GET base+path with the Host header host and returns status and body.
func get(ctx context.Context, c *http.Client, base, host, path string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, "", err
	}
	req.Host = host
	res, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res, string(body), err
}

// wsConn is a client connection that went through an Upgrade handshake.
type wsConn struct {
	net.Conn
	r *bufio.Reader
}

func dialWS(t *testing.T, base, host string) *wsConn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, "GET /ws HTTP/1.1\r\nHost: "+host+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	res, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal("upgrade handshake:", err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade handshake: status %d, want 101", res.StatusCode)
	}
	return &wsConn{Conn: conn, r: br}
}

// roundTrip writes msg and reads the echo.
func (c *wsConn) roundTrip(msg string) (string, error) {
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	buf := make([]byte, len(msg))
	_, err := io.ReadFull(c.r, buf)
	return string(buf), err
}

// closingAddr is a backend that accepts each connection and closes it unanswered, as
// Docker's port proxy does for a container that just died.
func closingAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln.Addr().String()
}
