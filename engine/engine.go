package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/clank-dev/clank/internal/pubsub"
	"github.com/clank-dev/clank/store"
)

// Router is the edge router as the engine drives it (engine/edge implements it).
type Router interface {
	// SetRoute points the service's domains at backends ("HOST:PORT" each: a
	// deployment's routable replicas), balanced by fewest requests in flight,
	// in one atomic switch, and returns the previous backends. No backend:
	// 503 at once.
	SetRoute(service string, domains []string, backends ...string) (previous []string)
	RemoveRoute(service string)
	// SetUnavailable points the service's domains at nothing healthy for
	// now: requests wait up to hold for a backend (the next SetRoute), then
	// get 503 with Retry-After retryAfter.
	SetUnavailable(service string, domains []string, hold, retryAfter time.Duration)
	// Drain waits until nothing is in flight on backend, or ctx ends.
	Drain(ctx context.Context, backend string) error
	// Responses counts backend's answers through the router by class: [0]
	// is 1xx ... [4] is 5xx.
	Responses(backend string) [5]uint64
}

// Options configure an Engine. Store, Runtime and Router are required.
type Options struct {
	Store   *store.Store
	Runtime Runtime
	Router  Router
	// Images answers for registries (the daemon wires the registry
	// package's); nil: no registry checks, the local engine alone counts.
	Images ImageChecker
	// Certificates obtains TLS certificates for the domains deployments serve;
	// nil when HTTPS is off.
	Certificates Certificates
	// KeepImages is how many recently ACTIVE deployments per service keep
	// their local images after each deploy (DefaultKeepImages if 0; -1 never prunes).
	KeepImages   int
	DrainTimeout time.Duration // how long an old deployment may finish in-flight requests
	StopGrace    time.Duration // SIGTERM to SIGKILL when stopping a container
	// RegistryAuth is the X-Registry-Auth with which Swarm's nodes pull
	// image ("" for none); only on Swarm (a Runtime that is a Swarm).
	RegistryAuth func(image string) string
	Logger       *slog.Logger
}

// Engine owns the lifecycle of every deployment.
type Engine struct {
	store  *store.Store
	rt     Runtime
	swarm  Swarm // the runtime, when it runs deployments as Swarm services (swarm.go)
	router Router
	images ImageChecker
	certs  Certificates
	opts   Options
	log    *slog.Logger
	owner  string // this data dir's instance id, on every container's labels
	// probeClient probes a starting container: a fresh connection each time.
	probeClient *http.Client
	// keepAlive probes supervised containers over kept connections.
	keepAlive *http.Client
	bus       pubsub.Bus[Event]
	avail     availabilityCache
	// recheck asks for the local images to be checked again (an image was removed).
	recheck chan struct{}

	mu       sync.Mutex
	inflight map[string]string // service -> deployment id in progress
	released chan struct{}     // closed (and made anew) at each release
	closing  bool              // Close began: no new work

	routeMu sync.Mutex // serialises route switches (see routes.go)
	routes  routes

	supMu       sync.Mutex
	sup         map[string]*supervised // ACTIVE deployment id -> its supervision
	byContainer map[string]*replica    // container id -> the replica that supervises it

	docker      dockerState
	standbyPoke chan struct{} // a standby was made: look at the next window end
	traffic     trafficLog
	stats       statsCache // live CPU and memory (stats.go)

	ctx    context.Context // ends at Close: lifecycles and drains stop
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const metaOwner = "owner"

// New makes an Engine. Call Start to reconcile and begin, Close to stop.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.Store == nil || opts.Runtime == nil || opts.Router == nil {
		return nil, errors.New("engine: Store, Runtime and Router are required")
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.KeepImages == 0 {
		opts.KeepImages = DefaultKeepImages
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = DefaultStopGrace
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	owner, err := opts.Store.GetMeta(ctx, metaOwner)
	if errors.Is(err, store.ErrNotFound) || (err == nil && owner == "") {
		owner = newID("")
		err = opts.Store.SetMeta(ctx, metaOwner, owner)
	}
	if err != nil {
		return nil, fmt.Errorf("engine: instance id: %w", err)
	}
	e := &Engine{
		store:       opts.Store,
		rt:          opts.Runtime, // wrapped below
		router:      opts.Router,
		opts:        opts,
		log:         opts.Logger,
		owner:       owner,
		inflight:    map[string]string{},
		released:    make(chan struct{}),
		probeClient: newProbeClient(),
		keepAlive:   newKeepAliveProbeClient(),
		routes:      routes{owner: map[string]string{}},
		sup:         map[string]*supervised{},
		byContainer: map[string]*replica{},
		standbyPoke: make(chan struct{}, 1),
	}
	e.rt = keepingRuntime{Runtime: opts.Runtime, e: e}
	e.traffic.init()
	e.swarm, _ = opts.Runtime.(Swarm)
	e.images = opts.Images
	if e.images == nil {
		e.images = localImages{}
	}
	e.certs = opts.Certificates
	if e.certs == nil {
		e.certs = noCertificates{}
	}
	e.avail.init()
	e.recheck = make(chan struct{}, 1)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// Owner is the instance id on the labels of this engine's containers.
func (e *Engine) Owner() string { return e.owner }

// Start reconciles the store, the runtime and the router after a (re)start,
// puts every ACTIVE deployment under supervision, then follows the Docker
// engine's events (reconciling again each time it comes back). If the Docker
// engine does not answer, Start still knows the routes from the store (they
// answer 503 until Docker confirms their containers) and returns the error so
// that the daemon can say so; the daemon keeps running.
func (e *Engine) Start(ctx context.Context) error {
	e.loadAvailability(ctx)
	err := e.reconcile(ctx)
	e.go_(e.followDocker)
	e.go_(e.refreshAvailabilityLoop)
	e.go_(e.standbyLoop)
	e.go_(e.trafficLoop)
	return err
}

// ErrClosed refuses work once Close began; it matches ErrUnavailable.
var ErrClosed = fmt.Errorf("%w: the daemon is shutting down", ErrUnavailable)

// Close refuses new work, stops every lifecycle, drain and supervisor the
// engine runs and waits for them. Containers keep running: the next Start
// reconciles them.
func (e *Engine) Close() error {
	e.mu.Lock()
	e.closing = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
	return nil
}

// go_ runs f in a goroutine the engine owns (Close waits for it); once Close
// began it runs nothing and returns false.
func (e *Engine) go_(f func(ctx context.Context)) bool {
	return e.spawn(nil, func() { f(e.ctx) })
}

// spawn runs f in a goroutine the engine owns, counted in wg too (if not
// nil); once Close began it runs nothing and returns false.
func (e *Engine) spawn(wg *sync.WaitGroup, f func()) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closing {
		return false
	}
	e.wg.Add(1)
	if wg != nil {
		wg.Add(1)
	}
	go func() {
		defer e.wg.Done()
		if wg != nil {
			defer wg.Done()
		}
		f()
	}()
	return true
}

// Ping reports whether the Docker engine answers.
func (e *Engine) Ping(ctx context.Context) error {
	if err := e.rt.Ping(ctx); err != nil {
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

func newID(prefix string) string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return prefix + hex.EncodeToString(b[:])
}

func backendAddr(hostPort int) string {
	if hostPort == 0 {
		return ""
	}
	return fmt.Sprintf("127.0.0.1:%d", hostPort)
}

// HasContainer says whether deployment d still has its first replica's
// container (its logs live there); the error says why not.
func (e *Engine) HasContainer(ctx context.Context, d store.Deployment) error {
	if e.swarm != nil {
		return e.hasSwarmService(ctx, d)
	}
	if len(d.Containers) == 0 {
		return &notFound{fmt.Sprintf("deployment #%d of %s never had a container (%s)", d.Number, d.Service, d.Status)}
	}
	_, err := e.verify(ctx, d, d.Containers[0])
	switch {
	case errors.Is(err, ErrContainerNotFound), errors.Is(err, errNotOurs):
		return &notFound{fmt.Sprintf("the container of deployment #%d of %s was removed when it became %s, and no log of it was kept", d.Number, d.Service, d.Status)}
	case err != nil:
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return nil
}

// newProbeClient is the HTTP client of a starting container's health
// probes: loopback only, no proxy, no keep-alive (each probe is a fresh
// connection, as a client's would be), and a redirect counts as an answer.
func newProbeClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// newKeepAliveProbeClient is the HTTP client of supervision probes: as
// newProbeClient, but one connection per container is kept between probes,
// which makes a probe of an idle service a write and a read.
func newKeepAliveProbeClient() *http.Client {
	c := newProbeClient()
	c.Transport = &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, IdleConnTimeout: 2 * time.Minute}
	return c
}
