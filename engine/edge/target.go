package edge

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// errRefused is the dial error (answered as 502) of a retired backend whose drain ran
// out of time.
var errRefused = errors.New("backend closed by a drain that timed out")

// target is one backend address with its own proxy and connection pool, so that
// everything it holds can be counted, drained and closed without touching the others.
type target struct {
	addr      string
	proxy     *httputil.ReverseProxy
	transport *plainTransport
	logger    *slog.Logger

	inflight  atomic.Int64     // requests being served, upgraded connections included
	responses [5]atomic.Uint64 // answers by class: [0] 1xx ... [4] 5xx (the router's 502/504 too)
	drainers  atomic.Int32     // Drain calls waiting on this backend
	wake      chan struct{}    // a request that brought inflight to 0 while someone drained

	retired bool // no route uses it; guarded by Router.mu

	connMu  sync.Mutex
	conns   map[*trackedConn]struct{} // every open connection to addr
	refused bool                      // a drain timed out: no new connections
}

func newTarget(addr string, opts Options) *target {
	b := &target{
		addr:   addr,
		logger: opts.Logger.With("backend", addr),
		wake:   make(chan struct{}, 1),
		conns:  map[*trackedConn]struct{}{},
	}
	dialer := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	// One transport per backend rather than one shared: a backend's pool only ever
	// holds connections to its own address anyway, and this way closing a drained
	// backend's idle connections leaves every other backend's pool warm.
	dial := func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dialer.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return b.track(c)
	}
	b.transport = &plainTransport{
		addr:          addr,
		logger:        b.logger,
		dial:          dial,
		maxIdle:       opts.MaxIdleConnsPerHost,
		idleTimeout:   opts.IdleConnTimeout,
		headerTimeout: opts.ResponseHeaderTimeout,
		// The fallback carries what is not plain (request bodies, other methods,
		// upgrades) on a connection of its own each time. http.Transport reuses a
		// connection as soon as a response ends, so a backend that answers a request
		// it has not read yet (an unsolicited response) leaves the real answer on the
		// connection for the next client: cross-talk seen under load in
		// crosstalk_test.go. The plain path, nearly all the traffic, keeps its pool:
		// it checks a connection before and after each use (plainTransport).
		fallback: &http.Transport{
			DialContext:           dial,
			DisableKeepAlives:     true,
			MaxIdleConnsPerHost:   opts.MaxIdleConnsPerHost,
			IdleConnTimeout:       opts.IdleConnTimeout,
			ResponseHeaderTimeout: opts.ResponseHeaderTimeout,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true, // pass the client's Accept-Encoding and the body through untouched
		},
	}
	b.proxy = &httputil.ReverseProxy{
		Rewrite:      b.rewrite,
		Transport:    b.transport,
		BufferPool:   &proxyBuffers,
		ErrorHandler: b.proxyError,
		ModifyResponse: func(resp *http.Response) error {
			b.count(resp.StatusCode)
			return nil
		},
		ErrorLog: slog.NewLogLogger(b.logger.Handler(), slog.LevelDebug),
		// FlushInterval 0: ReverseProxy already flushes every write of a response
		// without Content-Length or of type text/event-stream, so streams go through
		// unbuffered while ordinary responses take one write.
	}
	return b
}

func (b *target) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = b.addr
	pr.Out.Host = pr.In.Host
	// ReverseProxy drops query parameters it cannot parse; the service should see
	// exactly what the client sent.
	pr.Out.URL.RawQuery = pr.In.URL.RawQuery
	pr.SetXForwarded()
}

func (b *target) proxyError(w http.ResponseWriter, req *http.Request, err error) {
	if req.Context().Err() != nil { // the client went away; nobody reads an answer
		b.logger.Debug("client gone", "path", req.URL.Path, "err", err)
		return
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		b.logger.Warn("backend timeout", "path", req.URL.Path, "err", err)
		b.count(http.StatusGatewayTimeout)
		http.Error(w, "gateway timeout", http.StatusGatewayTimeout)
		return
	}
	b.logger.Warn("backend unreachable", "path", req.URL.Path, "err", err)
	b.count(http.StatusBadGateway)
	http.Error(w, "bad gateway", http.StatusBadGateway)
}

// count adds one answer with status code to the backend's counts by class:
// one atomic add per request, the cost the router's benchmarks allow.
func (b *target) count(code int) {
	if class := code/100 - 1; class >= 0 && class < len(b.responses) {
		b.responses[class].Add(1)
	}
}

func (b *target) acquire() { b.inflight.Add(1) }

func (b *target) release() {
	if b.inflight.Add(-1) == 0 && b.drainers.Load() > 0 {
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
}

// serve proxies req: plain requests itself (see plain.go), the rest through
// ReverseProxy. Both return only when the response (or the upgraded connection) is
// over, and panic with http.ErrAbortHandler when a body copy fails. With retry, a
// plain request the backend left unanswered (see unanswered) is not answered either:
// serve returns that error, and the caller may send the request elsewhere.
func (b *target) serve(w http.ResponseWriter, req *http.Request, retry bool) error {
	defer b.release()
	if isPlainRequest(req) {
		return b.servePlain(w, req, retry)
	}
	b.proxy.ServeHTTP(w, req)
	return nil
}

// unanswered reports whether err means that the backend answered nothing at all to a
// plain request: the connection was refused, or closed before the first byte of an
// answer (a container that just died: Docker's port proxy accepts, then closes). Such
// a GET or HEAD may be sent again.
func unanswered(err error) bool {
	var op *net.OpError
	var stale staleError
	return errors.Is(err, errRefused) || errors.As(err, &op) && op.Op == "dial" || errors.As(err, &stale)
}

// drain waits for inflight to reach 0. When ctx ends first it closes every connection
// to the backend, which fails or ends whatever is still running on it.
func (b *target) drain(ctx context.Context) error {
	for b.inflight.Load() > 0 {
		select {
		case <-b.wake:
		case <-ctx.Done():
			b.closeConns()
			return ctx.Err()
		}
	}
	select { // pass the wake-up on to another Drain of the same backend
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

func (b *target) track(c net.Conn) (net.Conn, error) {
	tc := &trackedConn{Conn: c, b: b}
	b.connMu.Lock()
	if b.refused {
		b.connMu.Unlock()
		c.Close()
		return nil, errRefused
	}
	b.conns[tc] = struct{}{}
	b.connMu.Unlock()
	return tc, nil
}

func (b *target) closeConns() {
	b.connMu.Lock()
	conns := make([]*trackedConn, 0, len(b.conns))
	for c := range b.conns {
		conns = append(conns, c)
	}
	b.connMu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// refuseConns makes every later dial fail with errRefused.
func (b *target) refuseConns() {
	b.connMu.Lock()
	b.refused = true
	b.connMu.Unlock()
}

func (b *target) refusing() bool {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	return b.refused
}

// trackedConn is a connection to a backend that removes itself from the backend's set
// when closed, so a drain can close what is left, hijacked connections included.
type trackedConn struct {
	net.Conn
	b    *target
	once sync.Once
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.b.connMu.Lock()
		delete(c.b.conns, c)
		c.b.connMu.Unlock()
	})
	return err
}

// SyscallConn gives the router's keep-alive pool the socket to peek at (see
// backendConn.peek).
func (c *trackedConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// CloseWrite half-closes an upgraded connection when the client stops sending, as
// ReverseProxy asks of the backend side.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}

// proxyBuffers lends ReverseProxy its copy buffers. It pools array pointers, so
// neither Get nor Put allocates.
var proxyBuffers bufferPool

type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte {
	if buf, ok := p.pool.Get().(*[ProxyBufferSize]byte); ok {
		return buf[:]
	}
	return new([ProxyBufferSize]byte)[:]
}

func (p *bufferPool) Put(buf []byte) {
	if cap(buf) >= ProxyBufferSize {
		p.pool.Put((*[ProxyBufferSize]byte)(buf[:ProxyBufferSize]))
	}
}
