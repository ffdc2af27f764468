package edge

import (
	"context"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clank-dev/clank/store"
)

// Defaults for the zero Options.
const (
	DefaultDialTimeout         = 5 * time.Second
	DefaultIdleConnTimeout     = 90 * time.Second
	DefaultMaxIdleConnsPerHost = 512
	// ProxyBufferSize is the size of the buffers that copy bodies between client and backend.
	ProxyBufferSize = 32 << 10
	// DefaultRetryAfter is the Retry-After of a 503 for a service with nothing healthy,
	// unless SetUnavailable says better.
	DefaultRetryAfter = time.Second
	// DefaultMaxHeld bounds the requests that wait at once for a backend to come back
	// (see SetUnavailable); past it a request gets its 503 at once, so that a flood
	// cannot pile up.
	DefaultMaxHeld = 4096
)

// Options tune a Router. The zero value is ready to use.
type Options struct {
	// Logger receives proxy errors (Warn) and client disconnects (Debug). nil discards.
	Logger *slog.Logger
	// DialTimeout bounds connecting to a backend (DefaultDialTimeout if 0).
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a backend's response headers; 0 waits
	// as long as the client does.
	ResponseHeaderTimeout time.Duration
	// IdleConnTimeout closes keep-alive connections to a backend idle this long
	// (DefaultIdleConnTimeout if 0).
	IdleConnTimeout time.Duration
	// MaxIdleConnsPerHost is how many keep-alive connections to one backend are kept
	// (DefaultMaxIdleConnsPerHost if 0).
	MaxIdleConnsPerHost int
	// MaxHeld is how many requests may wait at once for a backend to come back
	// (DefaultMaxHeld if 0).
	MaxHeld int
	// RetryUnanswered, if not 0, is how long a plain GET or HEAD that its backend left
	// wholly unanswered (connection refused, or closed before any answer: a container
	// that just died) waits for the route to change, and is then sent to the new
	// backend, rather than answered 502 at once. 0 answers 502 at once.
	RetryUnanswered time.Duration
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	if o.IdleConnTimeout == 0 {
		o.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if o.MaxIdleConnsPerHost == 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if o.MaxHeld == 0 {
		o.MaxHeld = DefaultMaxHeld
	}
	return o
}

// Router is an http.Handler that proxies each request to the backend of the service
// that owns the request's host.
type Router struct {
	opts  Options
	table atomic.Pointer[table] // read lock-free by every request

	mu       sync.Mutex         // serialises writers of table and guards backends
	backends map[string]*target // every backend a request may still be on, by address
	held     atomic.Int64       // requests waiting for a backend (see SetUnavailable)
}

// table is one immutable version of the routing table. Writers build a new one and
// swap the pointer; nothing in it changes after the swap but the pools' turn counters.
type table struct {
	hosts    map[string]*pool // domain -> its backends; a nil pool means 503
	down     map[string]*down // domain -> how a service with nothing healthy answers
	services map[string]serviceRoute
	next     chan struct{} // closed when a newer table replaces this one
}

type serviceRoute struct {
	domains []string
	pool    *pool // nil: the service is known but nothing healthy serves it
	down    *down // with a nil pool
}

// pool is the backends a service's requests are balanced across: its healthy
// replicas, as the engine last set them (docs/architecture.md, "Replicas").
type pool struct {
	backends []*target // one or more, each address once
	turn     atomic.Uint32
}

// pick returns the backend with the fewest requests in flight, skipping those in
// skip (nil if none is left). The scan starts one further each time, so that equally
// busy backends (an idle service: all at zero) take turns. One backend, the usual
// case, costs no atomic write.
func (p *pool) pick(skip []*target) *target {
	if len(p.backends) == 1 {
		if b := p.backends[0]; !slices.Contains(skip, b) {
			return b
		}
		return nil
	}
	n := uint32(len(p.backends))
	start := p.turn.Add(1)
	var best *target
	var least int64
	for i := range n {
		b := p.backends[(start+i)%n]
		if slices.Contains(skip, b) {
			continue
		}
		if in := b.inflight.Load(); best == nil || in < least {
			best, least = b, in
		}
	}
	return best
}

// holds reports whether b is one of p's backends (p may be nil).
func (p *pool) holds(b *target) bool {
	return p != nil && slices.Contains(p.backends, b)
}

// addrs lists p's backend addresses (nil for a nil pool).
func (p *pool) addrs() []string {
	if p == nil {
		return nil
	}
	out := make([]string, len(p.backends))
	for i, b := range p.backends {
		out[i] = b.addr
	}
	return out
}

// down is how requests for a service with nothing healthy are answered.
type down struct {
	holdUntil  time.Time // until then a request waits for a backend instead of a 503
	retryAfter string    // the 503's Retry-After, in seconds
}

// New returns a Router with no routes.
func New(opts Options) *Router {
	r := &Router{opts: opts.withDefaults(), backends: map[string]*target{}}
	r.table.Store(&table{hosts: map[string]*pool{}, down: map[string]*down{}, services: map[string]serviceRoute{}, next: make(chan struct{})})
	return r
}

// ServeHTTP routes req on its Host header: unknown host 404, a service with no healthy
// backend 503 with Retry-After (after waiting for one while SetUnavailable's hold
// lasts), otherwise the answer of the service's backend with the fewest requests in
// flight (502 if it cannot be reached). A plain request a backend left wholly
// unanswered (a replica that just died) goes to another backend of the service at
// once, and when none is left waits for the route to change (RetryUnanswered).
func (r *Router) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	host := CanonicalHost(req.Host)
	var retryUntil time.Time // set by the first backend that left req unanswered
	var failed []*target     // the backends of table seen that left req unanswered
	var seen *table
	for {
		t := r.table.Load()
		if t != seen {
			seen, failed = t, failed[:0]
		}
		p, ok := t.hosts[host]
		if !ok {
			http.Error(w, "no service for this host", http.StatusNotFound)
			return
		}
		if p == nil {
			d := t.down[host]
			if r.awaitBackend(req, t, d) {
				continue
			}
			retry := defaultRetryAfter
			if d != nil {
				retry = d.retryAfter
			}
			w.Header().Set("Retry-After", retry)
			http.Error(w, "service unavailable: no healthy deployment", http.StatusServiceUnavailable)
			return
		}
		b := p.pick(failed)
		b.acquire()
		// The request counts on b only if b was still routed after the count went
		// up; otherwise a SetRoute slipped in between and a Drain of b may already
		// have seen zero. Every SetRoute stores a new table, so an unchanged pointer
		// proves the route is unchanged.
		if now := r.table.Load(); now != t && !now.hosts[host].holds(b) {
			b.release()
			continue
		}
		err := b.serve(w, req, r.opts.RetryUnanswered > 0 || len(p.backends) > 1)
		if err == nil {
			return
		}
		// Nothing reached the client: another replica, or wait for the engine to
		// route elsewhere.
		if failed = append(failed, b); len(failed) < len(p.backends) {
			continue
		}
		if retryUntil.IsZero() {
			retryUntil = time.Now().Add(r.opts.RetryUnanswered)
		}
		if r.awaitChange(req, t, retryUntil) {
			continue
		}
		b.proxyError(w, req, err)
		return
	}
}

var defaultRetryAfter = retryAfterSeconds(DefaultRetryAfter)

func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int((d+time.Second-1)/time.Second)))
}

// awaitBackend waits, while d's hold lasts, for a newer table (a backend may be set
// for the host), and reports whether one came. It holds no lock.
func (r *Router) awaitBackend(req *http.Request, t *table, d *down) bool {
	if d == nil {
		return false
	}
	return r.awaitChange(req, t, d.holdUntil)
}

// awaitChange waits until deadline for a table newer than t, and reports whether one
// came; past MaxHeld waiting requests it does not wait.
func (r *Router) awaitChange(req *http.Request, t *table, deadline time.Time) bool {
	wait := time.Until(deadline)
	if wait <= 0 {
		return false
	}
	if r.held.Add(1) > int64(r.opts.MaxHeld) {
		r.held.Add(-1)
		return false
	}
	defer r.held.Add(-1)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-t.next:
		return true
	case <-timer.C:
	case <-req.Context().Done():
	}
	return false
}

// SetRoute points every domain of service at backends ("HOST:PORT" each; "" entries
// and repeats are ignored), replacing the service's previous domains and backends in
// one atomic swap; requests are balanced across them by fewest in flight. No backend
// keeps the service known with nothing healthy behind it: 503 with Retry-After at
// once. A domain another service held moves to this one. It returns the service's
// previous backends (nil if none).
func (r *Router) SetRoute(service string, domains []string, backends ...string) (previous []string) {
	var d *down
	if !slices.ContainsFunc(backends, func(b string) bool { return b != "" }) {
		d = &down{retryAfter: defaultRetryAfter}
	}
	return r.setRoute(service, domains, backends, d)
}

// SetUnavailable points service's domains at nothing healthy, as SetRoute with no
// backend, for a service that lost its backend and expects one back soon (a crashed
// container being started again, a rollback on its way): for hold from now, a request
// waits for a backend to be set instead of failing; after that, or past
// Options.MaxHeld waiting requests, it gets 503 with Retry-After retryAfter (rounded up to seconds).
func (r *Router) SetUnavailable(service string, domains []string, hold, retryAfter time.Duration) {
	r.setRoute(service, domains, nil, &down{holdUntil: time.Now().Add(hold), retryAfter: retryAfterSeconds(retryAfter)})
}

// Responses counts the answers backend gave through the router, by class ([0] is
// 1xx ... [4] is 5xx; the router's own 502 and 504 for it count as 5xx), since the
// router began routing to it. A backend the router forgot counts nothing.
func (r *Router) Responses(backend string) [5]uint64 {
	var out [5]uint64
	r.mu.Lock()
	b := r.backends[backend]
	r.mu.Unlock()
	if b != nil {
		for i := range out {
			out[i] = b.responses[i].Load()
		}
	}
	return out
}

func (r *Router) setRoute(service string, domains, backends []string, d *down) (previous []string) {
	r.mu.Lock()
	var idle []*target
	defer func() {
		r.mu.Unlock()
		closeIdle(idle)
	}()

	old := r.table.Load()
	previous = old.services[service].pool.addrs()
	var p *pool
	for _, addr := range backends {
		if addr == "" || (p != nil && slices.ContainsFunc(p.backends, func(b *target) bool { return b.addr == addr })) {
			continue
		}
		if p == nil {
			p = &pool{}
		}
		p.backends = append(p.backends, r.backendLocked(addr))
	}
	clean := make([]string, 0, len(domains))
	for _, d := range domains {
		if d = CanonicalHost(d); d != "" && !slices.Contains(clean, d) {
			clean = append(clean, d)
		}
	}

	services := maps.Clone(old.services)
	for name, s := range services { // a domain belongs to one service: the latest to claim it
		if name == service {
			continue
		}
		if kept := slices.DeleteFunc(slices.Clone(s.domains), func(d string) bool { return slices.Contains(clean, d) }); len(kept) != len(s.domains) {
			s.domains = kept
			services[name] = s
		}
	}
	services[service] = serviceRoute{domains: clean, pool: p, down: d}
	idle = r.swapLocked(services)
	return previous
}

// RemoveRoute forgets service and its domains: they answer 404 from now on.
func (r *Router) RemoveRoute(service string) {
	r.mu.Lock()
	old := r.table.Load()
	if _, ok := old.services[service]; !ok {
		r.mu.Unlock()
		return
	}
	services := maps.Clone(old.services)
	delete(services, service)
	idle := r.swapLocked(services)
	r.mu.Unlock()
	closeIdle(idle)
}

// Drain waits until no request (upgraded connections and streaming responses
// included) is in flight on backend, or until ctx ends. When ctx ends it closes every
// connection left to that backend, which ends those requests, and returns an error
// that wraps ctx.Err(). A backend the router does not know has nothing in flight.
// Drain takes no router lock while it waits: switches go on meanwhile.
func (r *Router) Drain(ctx context.Context, backend string) error {
	r.mu.Lock()
	b := r.backends[backend]
	if b != nil {
		b.drainers.Add(1)
	}
	r.mu.Unlock()
	if b == nil {
		return nil
	}

	err := b.drain(ctx)

	r.mu.Lock()
	b.drainers.Add(-1)
	if err != nil && b.retired {
		// A request that got past the switch but has not dialled yet must not start
		// now; a later SetRoute to this address gets a fresh target.
		b.refuseConns()
	}
	idle := r.sweepLocked()
	r.mu.Unlock()
	closeIdle(idle)
	if err != nil {
		b.closeConns() // those dialled since drain closed the others
		return &DrainError{Backend: backend, Err: err}
	}
	return nil
}

// DrainError says that a drain ran out of time and closed what was left.
type DrainError struct {
	Backend string
	Err     error // ctx.Err()
}

func (e *DrainError) Error() string {
	return "drain " + e.Backend + ": connections closed: " + e.Err.Error()
}

func (e *DrainError) Unwrap() error { return e.Err }

// inFlight is how many requests (upgraded connections included) are on backend now.
func (r *Router) inFlight(backend string) int {
	r.mu.Lock()
	b := r.backends[backend]
	r.mu.Unlock()
	if b == nil {
		return 0
	}
	return int(b.inflight.Load())
}

// routes returns a copy of the routing table: domain -> its backends joined by ","
// ("" when the service has nothing healthy).
func (r *Router) routes() map[string]string {
	t := r.table.Load()
	routes := make(map[string]string, len(t.hosts))
	for host, p := range t.hosts {
		routes[host] = strings.Join(p.addrs(), ",")
	}
	return routes
}

// backendLocked returns the backend for addr, creating it if needed. A backend whose
// connections a drain closed is replaced by a fresh one.
func (r *Router) backendLocked(addr string) *target {
	if b := r.backends[addr]; b != nil && !b.refusing() {
		return b
	}
	b := newTarget(addr, r.opts)
	r.backends[addr] = b
	return b
}

// swapLocked publishes a table built from services, then retires the backends no
// route uses any more and returns those it forgot (see sweepLocked).
func (r *Router) swapLocked(services map[string]serviceRoute) []*target {
	hosts := make(map[string]*pool, len(services))
	downs := map[string]*down{}
	for _, s := range services {
		for _, d := range s.domains {
			hosts[d] = s.pool
			if s.pool == nil && s.down != nil {
				downs[d] = s.down
			}
		}
	}
	old := r.table.Load()
	r.table.Store(&table{hosts: hosts, down: downs, services: services, next: make(chan struct{})})
	close(old.next) // wake the requests waiting for a backend: they look again

	inUse := make(map[*target]bool, len(services))
	for _, s := range services {
		if s.pool != nil {
			for _, b := range s.pool.backends {
				inUse[b] = true
			}
		}
	}
	for _, b := range r.backends {
		b.retired = !inUse[b]
	}
	return r.sweepLocked()
}

// sweepLocked forgets retired backends with nothing in flight and nobody draining
// them, and returns them so that the caller closes their idle connections once the
// lock is released. It runs after the table swap, so a request that counts itself on
// such a backend afterwards sees the new table and goes elsewhere (see ServeHTTP).
func (r *Router) sweepLocked() []*target {
	var forgotten []*target
	for addr, b := range r.backends {
		if b.retired && b.drainers.Load() == 0 && b.inflight.Load() == 0 {
			delete(r.backends, addr)
			forgotten = append(forgotten, b)
		}
	}
	return forgotten
}

func closeIdle(targets []*target) {
	for _, b := range targets {
		b.transport.CloseIdleConnections()
	}
}

// CanonicalHost strips a Host header's port and puts the rest in the form
// domains are owned and routed under (store.NormalizeDomain): what the router
// (and the HTTPS redirect in certs) looks hosts up by. It does not allocate
// for a host that is already lower-case.
func CanonicalHost(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host[i:], ']') < 0 {
		host = host[:i]
	}
	return store.NormalizeDomain(host)
}
