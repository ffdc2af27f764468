package edge

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/clank-dev/clank/internal/connpeek"
)

// maxResponseHeaderBytes bounds what a backend may send before its response body, as
// http.Transport's default does.
const maxResponseHeaderBytes = 10 << 20

var (
	// errUnaskedSwitch answers (502) a backend that switches protocols on a request that
	// did not ask to: the connection is then no HTTP connection any more.
	errUnaskedSwitch = errors.New("backend switched protocols on a request without Upgrade")
	errBodyClosed    = errors.New("read on a closed response body")
	aLongTimeAgo     = time.Unix(1, 0) // a deadline that fails blocked I/O at once
)

// plainTransport is the RoundTripper ReverseProxy uses for one backend. A plain request
// (GET or HEAD, no body, no upgrade: nearly all the traffic) runs start to finish on
// the caller's goroutine over a pooled keep-alive connection: one write, one read.
// http.Transport hands each request to two goroutines per connection and through its
// connection queue, which costs the router a sizeable share of its CPU per request on
// small responses. Everything else (request bodies, upgrades, other methods) goes to
// http.Transport, which handles 100-continue, replays and hijacked connections.
//
// ReverseProxy does the proxying around it (hop-by-hop headers, forwarding headers,
// trailers, 1xx forwarding, flushing of streams, error answers) for the requests that
// need ReverseProxy; target.servePlain does the same for plain requests and calls
// send directly.
type plainTransport struct {
	addr          string
	logger        *slog.Logger
	dial          func(ctx context.Context, network, address string) (net.Conn, error)
	fallback      *http.Transport
	maxIdle       int
	idleTimeout   time.Duration
	headerTimeout time.Duration

	// desync is set once the backend sent bytes that belong to no request (more than
	// a response declared, a body on a HEAD answer, an answer while idle). From then
	// on no connection to it is reused: each request gets its own, so whatever else
	// the backend sends can only ever reach the request it was sent on.
	desync atomic.Bool

	mu      sync.Mutex
	idle    []*backendConn // oldest first; the newest is reused first (warmest)
	reaper  *time.Timer    // closes connections idle longer than idleTimeout
	reaping bool           // reaper is armed
}

// RoundTrip implements http.RoundTripper.
func (t *plainTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !isPlain(req) {
		return t.fallback.RoundTrip(req)
	}
	ctx := req.Context()
	var hints gotHints
	if trace := httptrace.ContextClientTrace(ctx); trace != nil {
		hints = trace.Got1xxResponse // ReverseProxy forwards 1xx answers through it
	}
	return t.send(ctx, req, hints)
}

// gotHints receives each informational (1xx, not 101) answer before the final one.
type gotHints func(code int, header textproto.MIMEHeader) error

// send runs a plain request (see isPlain) over a pooled connection. ctx, not req's
// own context, governs it: target.servePlain reuses requests that carry no context.
func (t *plainTransport) send(ctx context.Context, req *http.Request, hints gotHints) (*http.Response, error) {
	for {
		c, reused, err := t.conn(ctx)
		if err != nil {
			return nil, err
		}
		res, err := c.roundTrip(ctx, t, req, hints)
		if err == nil {
			return res, nil
		}
		c.close()
		// A kept-alive connection the backend closed while it sat idle fails before
		// the first response byte. GET and HEAD may be sent again, as http.Transport
		// does; a fresh connection's failure is the answer.
		var stale staleError
		if !reused || !errors.As(err, &stale) || ctx.Err() != nil {
			return nil, err
		}
	}
}

// isPlain reports whether req may take the fast path: replayable (see RoundTrip), no
// body to stream alongside the response, and no protocol switch.
func isPlain(req *http.Request) bool {
	return (req.Method == http.MethodGet || req.Method == http.MethodHead) &&
		(req.Body == nil || req.Body == http.NoBody) &&
		len(req.Header["Upgrade"]) == 0 && !req.Close && req.URL.Scheme == "http"
}

// CloseIdleConnections closes every keep-alive connection not serving a request.
func (t *plainTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	if t.reaping {
		t.reaper.Stop()
		t.reaping = false
	}
	t.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	t.fallback.CloseIdleConnections()
}

// conn takes the most recently used idle connection that is still quiet, or dials
// one.
func (t *plainTransport) conn(ctx context.Context) (c *backendConn, reused bool, err error) {
	for c := t.takeIdle(); c != nil; c = t.takeIdle() {
		switch c.peek() {
		case connQuiet:
			return c, true, nil
		case connBytes:
			t.desynced(c, "the backend sent bytes on an idle connection, with no request outstanding")
		default: // closed by the backend while idle, or not checkable: not reused
			c.close()
		}
	}
	nc, err := t.dial(ctx, "tcp", t.addr)
	if err != nil {
		return nil, false, err
	}
	c = &backendConn{conn: nc}
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.abort = func() { nc.SetDeadline(aLongTimeAgo) } // made once, not per request
	c.limit.r = nc
	c.br = bufio.NewReader(&c.limit)
	c.bw = bufio.NewWriter(nc)
	return c, false, nil
}

func (t *plainTransport) takeIdle() *backendConn {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(t.idle)
	if n == 0 {
		return nil
	}
	c := t.idle[n-1]
	t.idle[n-1] = nil
	t.idle = t.idle[:n-1]
	return c
}

// put keeps c, whose response was read exactly to its end, for the next request,
// unless the pool is full or the backend cannot be trusted with reuse. Bytes already
// buffered past the response belong to no request: c is closed. Bytes still on their
// way are caught when c is taken again (conn), before a request is written on it.
func (t *plainTransport) put(c *backendConn) {
	if c.br.Buffered() > 0 {
		t.desynced(c, "the backend sent more than its response declared")
		return
	}
	if t.desync.Load() {
		c.close()
		return
	}
	c.idleSince = time.Now()
	t.mu.Lock()
	if len(t.idle) >= t.maxIdle {
		t.mu.Unlock()
		c.close()
		return
	}
	t.idle = append(t.idle, c)
	if !t.reaping {
		t.reaping = true
		if t.reaper == nil {
			t.reaper = time.AfterFunc(t.idleTimeout, t.reap)
		} else {
			t.reaper.Reset(t.idleTimeout)
		}
	}
	t.mu.Unlock()
}

// desynced closes c, on which the backend sent bytes that answer no request, and
// stops reusing connections to the backend for good (see plainTransport.desync).
func (t *plainTransport) desynced(c *backendConn, why string) {
	c.close()
	if t.desync.Swap(true) {
		return
	}
	t.logger.Warn("backend broke HTTP framing; its connections are no longer reused", "reason", why)
	t.CloseIdleConnections()
}

// reap closes the connections idle for idleTimeout and re-arms itself for the next
// one to expire. One timer per backend rather than one per connection: the common
// case, a busy backend, never sees it fire with anything to do.
func (t *plainTransport) reap() {
	t.mu.Lock()
	cutoff := time.Now().Add(-t.idleTimeout)
	expired := 0
	for expired < len(t.idle) && !t.idle[expired].idleSince.After(cutoff) {
		expired++
	}
	old := make([]*backendConn, expired)
	copy(old, t.idle)
	t.idle = append(t.idle[:0], t.idle[expired:]...)
	if t.reaping = len(t.idle) > 0; t.reaping {
		t.reaper.Reset(t.idle[0].idleSince.Sub(cutoff))
	}
	t.mu.Unlock()
	for _, c := range old {
		c.close()
	}
}

// backendConn is one keep-alive HTTP/1.1 connection to a backend, used by one request
// at a time.
type backendConn struct {
	conn      net.Conn
	raw       syscall.RawConn // conn's socket, for peek; nil if it has none
	limit     limitReader
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
	abort     func() // fails the connection's blocked I/O at once
}

func (c *backendConn) close() { c.conn.Close() }

// connState is what peek finds on an idle connection.
type connState = connpeek.State

const (
	connQuiet     = connpeek.Quiet     // nothing to read: safe to send the next request on
	connBytes     = connpeek.Bytes     // bytes that answer no request
	connClosed    = connpeek.Closed    // the backend closed it, or it failed
	connUncertain = connpeek.Uncertain // no socket to look at: not reused
)

// staleError marks a failure before the backend answered anything (see RoundTrip).
type staleError struct{ err error }

func (e staleError) Error() string { return e.err.Error() }
func (e staleError) Unwrap() error { return e.err }

// roundTrip writes req and reads the response head. The body, read by ReverseProxy,
// gives the connection back to the pool at its end.
func (c *backendConn) roundTrip(ctx context.Context, t *plainTransport, req *http.Request, hints gotHints) (*http.Response, error) {
	// The client going away (or the handler ending) fails whatever I/O is blocked on
	// the connection, which closes it: the backend's request is cancelled too.
	stop := context.AfterFunc(ctx, c.abort)
	res, err := c.readResponse(ctx, t, req, hints)
	if err != nil {
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if res.Body == http.NoBody { // HEAD, 204, 304, Content-Length: 0: done already
		if stop() && !res.Close {
			t.put(c)
		} else {
			c.close()
		}
		return res, nil
	}
	res.Body = &pooledBody{body: res.Body, c: c, t: t, stop: stop, keep: !res.Close}
	return res, nil
}

func (c *backendConn) readResponse(ctx context.Context, t *plainTransport, req *http.Request, hints gotHints) (*http.Response, error) {
	if err := writeHead(ctx, c.bw, req); err != nil {
		return nil, staleError{err}
	}
	if err := c.bw.Flush(); err != nil {
		return nil, staleError{err}
	}
	if t.headerTimeout > 0 {
		c.conn.SetReadDeadline(time.Now().Add(t.headerTimeout))
		if err := ctx.Err(); err != nil { // see the deadline clearing below
			return nil, err
		}
	}
	c.limit.n = maxResponseHeaderBytes
	if _, err := c.br.Peek(1); err != nil {
		if isTimeout(err) { // a slow backend, not a stale connection: do not send again
			return nil, err
		}
		return nil, staleError{err}
	}
	for {
		res, err := http.ReadResponse(c.br, req)
		if err != nil {
			if c.limit.n <= 0 {
				return nil, errors.New("backend response headers exceed 10 MiB")
			}
			return nil, err
		}
		switch {
		case res.StatusCode == http.StatusSwitchingProtocols:
			return nil, errUnaskedSwitch
		case res.StatusCode >= 100 && res.StatusCode < 200:
			// Informational answers (103 Early Hints...) go on to the client through
			// hints; the final answer follows on the connection.
			if hints != nil {
				if err := hints(res.StatusCode, textproto.MIMEHeader(res.Header)); err != nil {
					return nil, err
				}
			}
			c.limit.n = maxResponseHeaderBytes
			continue
		}
		c.limit.n = math.MaxInt64
		if t.headerTimeout > 0 {
			c.conn.SetReadDeadline(time.Time{})
			// Clearing the deadline may have undone a cancellation that fired just
			// before; the body read would then wait for a client that is gone.
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		return res, nil
	}
}

// writeHead writes a plain request (no body) as req.Write does, without its fmt calls
// and header sorting: a good share of the router's allocations per request. Anything
// req.Write would rewrite or check (a Host that is not plain ASCII, control bytes in
// the target, a client trace that wants to see the header fields) goes to req.Write.
func writeHead(ctx context.Context, w *bufio.Writer, req *http.Request) error {
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	target := req.URL.RequestURI()
	if !plainHost(host) || hasCTL(target) || req.Close || req.Method != http.MethodGet && req.Method != http.MethodHead {
		return req.Write(w)
	}
	if trace := httptrace.ContextClientTrace(ctx); trace != nil && (trace.WroteHeaderField != nil || trace.WroteRequest != nil) {
		return req.Write(w)
	}
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(target)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(host)
	w.WriteString("\r\n")
	userAgent := "Go-http-client/1.1" // req.Write's default; an empty value sends none
	if vv, ok := req.Header["User-Agent"]; ok {
		userAgent = ""
		if len(vv) > 0 {
			userAgent = vv[0]
		}
	}
	if userAgent != "" {
		writeField(w, "User-Agent", userAgent)
	}
	for k, vv := range req.Header {
		switch k {
		case "Host", "User-Agent", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // req.Write's own or not for a request without a body
		}
		if !validFieldName(k) {
			continue // as req.Write: drop rather than fail
		}
		for _, v := range vv {
			writeField(w, k, v)
		}
	}
	_, err := w.WriteString("\r\n")
	return err
}

var newlineToSpace = strings.NewReplacer("\n", " ", "\r", " ") // as net/http's

// writeField writes one header line, its value cleaned as req.Write cleans it.
func writeField(w *bufio.Writer, name, value string) {
	if strings.ContainsAny(value, "\r\n") {
		value = newlineToSpace.Replace(value)
	}
	w.WriteString(name)
	w.WriteString(": ")
	w.WriteString(textproto.TrimString(value))
	w.WriteString("\r\n")
}

// plainHost reports whether req.Write would send host unchanged: letters, digits and
// the punctuation of names, ports and IPv6 literals, without a zone.
func plainHost(host string) bool {
	for i := 0; i < len(host); i++ {
		switch b := host[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '.' || b == '-' || b == ':' || b == '[' || b == ']' || b == '_':
		default:
			return false
		}
	}
	return true
}

func hasCTL(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < ' ' || b == 0x7f {
			return true
		}
	}
	return false
}

// validFieldName reports whether name is an HTTP token (RFC 9110, section 5.1).
func validFieldName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(b)) {
			return false
		}
	}
	return true
}

func isTimeout(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) && netErr.Timeout()
}

// pooledBody is a response body that puts its connection back in the pool once read
// to the end, or closes it when closed before. One goroutine (ReverseProxy's or
// servePlain's) reads and closes it.
type pooledBody struct {
	body io.ReadCloser
	c    *backendConn // nil once given back or closed
	t    *plainTransport
	stop func() bool // unregisters the cancellation; false if it already fired
	keep bool        // the backend keeps the connection open after this response
	err  error       // what Read returns once c is gone
}

func (b *pooledBody) Read(p []byte) (int, error) {
	if b.c == nil {
		return 0, b.err
	}
	n, err := b.body.Read(p)
	if err == io.EOF {
		b.finish(io.EOF, b.keep)
	}
	return n, err
}

func (b *pooledBody) Close() error {
	if b.c != nil {
		// Unread bytes of this response are still on the connection: it cannot carry
		// another request.
		b.finish(errBodyClosed, false)
	}
	return nil
}

func (b *pooledBody) finish(err error, reuse bool) {
	c := b.c
	b.c, b.err = nil, err
	if b.stop() && reuse {
		b.t.put(c)
	} else {
		c.close()
	}
}

// limitReader fails reads once n bytes have gone through, so a backend cannot make
// the router buffer endless response headers.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errors.New("read limit exhausted")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
