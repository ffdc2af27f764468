package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribution/distribution/v3"
	"github.com/distribution/distribution/v3/configuration"
	"github.com/distribution/distribution/v3/registry/handlers"
	"github.com/distribution/distribution/v3/registry/storage"
	storagedriver "github.com/distribution/distribution/v3/registry/storage/driver"
	"github.com/distribution/distribution/v3/registry/storage/driver/filesystem"
)

// Defaults of the embedded registry.
const (
	// DefaultGCQuietPeriod is how long garbage collection waits with no write
	// to the registry before it sweeps: a push writes its blobs before the
	// manifest that references them, and a sweep in between would delete them.
	DefaultGCQuietPeriod = 2 * time.Second
	// DefaultShutdownTimeout bounds Close.
	DefaultShutdownTimeout = 5 * time.Second
)

// ErrServerStarted is returned by Serve and Start on a Server already serving.
var ErrServerStarted = errors.New("registry: already serving")

// Server is the embedded Clank registry: distribution's registry application
// over filesystem storage in one directory, served on a listener it owns.
// Several Servers can live in one process.
type Server struct {
	dir     string
	app     *handlers.App
	access  *access
	handler http.Handler

	// ns and driver are a second view of the same storage, used by garbage
	// collection and the referrers API (distribution keeps its own private).
	driver storagedriver.StorageDriver
	ns     distribution.Namespace

	// writes holds every write request (read lock) against garbage
	// collection (write lock): GC is stop-the-world for pushes.
	writes    sync.RWMutex
	lastWrite atomic.Int64 // unix nanoseconds of the last finished write
	gcQuiet   time.Duration

	mu   sync.Mutex
	http *http.Server
	addr string
}

// NewServer builds a registry that stores its data under dir (created if
// needed). ctx bounds the registry's background work; Close stops it too.
func NewServer(ctx context.Context, dir string) (*Server, error) {
	if dir == "" {
		return nil, errors.New("registry: empty data directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("registry: data directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("registry: data directory: %w", err)
	}
	quietLogrus()
	acc, err := newAccess(abs)
	if err != nil {
		return nil, err
	}

	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("registry: http secret: %w", err)
	}
	cfg := &configuration.Configuration{
		Version: configuration.CurrentVersion,
		Storage: configuration.Storage{
			"filesystem": configuration.Parameters{"rootdirectory": abs},
			"delete":     configuration.Parameters{"enabled": true},
		},
	}
	cfg.Auth = configuration.Auth{accessControllerName: configuration.Parameters{"access": acc}}
	cfg.Log.AccessLog.Disabled = true
	cfg.HTTP.Secret = hex.EncodeToString(secret)
	// Non-distributable (foreign) layers name where they are fetched from;
	// distribution refuses every URL unless told which to accept.
	cfg.Validation.Manifests.URLs.Allow = []string{"^https?://"}

	app, err := newApp(ctx, cfg)
	if err != nil {
		return nil, err
	}
	driver, err := filesystem.FromParameters(map[string]any{"rootdirectory": abs})
	if err != nil {
		_ = app.Shutdown()
		return nil, fmt.Errorf("registry: storage driver: %w", err)
	}
	ns, err := storage.NewRegistry(ctx, driver, storage.EnableDelete)
	if err != nil {
		_ = app.Shutdown()
		return nil, fmt.Errorf("registry: storage: %w", err)
	}
	s := &Server{dir: abs, app: app, access: acc, driver: driver, ns: ns, gcQuiet: DefaultGCQuietPeriod}
	s.handler = s.withAccess(s.withWriteGate(s.withReferrers(app)))
	return s, nil
}

// newApp calls handlers.NewApp, which panics on a configuration it cannot use.
func newApp(ctx context.Context, cfg *configuration.Configuration) (app *handlers.App, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("registry: configuration: %v", r)
		}
	}()
	return handlers.NewApp(ctx, cfg), nil
}

// Dir is the directory that holds the registry's data.
func (s *Server) Dir() string { return s.dir }

// Handler is the registry's HTTP handler (the /v2/ API), for callers that
// serve it themselves.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on addr ("127.0.0.1:0" for an ephemeral port) and serves in
// the background until Close. It returns the address it listens on.
func (s *Server) Start(addr string) (net.Addr, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("registry: listen %s: %w", addr, err)
	}
	srv, err := s.attach(l)
	if err != nil {
		l.Close()
		return nil, err
	}
	go func() {
		// Serve returns http.ErrServerClosed after Close; the listener's owner
		// is the Server, which Close stops.
		_ = srv.Serve(l)
	}()
	return l.Addr(), nil
}

// Serve serves the registry on l until Close; it returns http.ErrServerClosed
// after Close, like http.Server.Serve.
func (s *Server) Serve(l net.Listener) error {
	srv, err := s.attach(l)
	if err != nil {
		return err
	}
	return srv.Serve(l)
}

func (s *Server) attach(l net.Listener) (*http.Server, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http != nil {
		return nil, ErrServerStarted
	}
	s.http = &http.Server{Handler: s.handler, ReadHeaderTimeout: 30 * time.Second}
	s.addr = l.Addr().String()
	return s.http, nil
}

// Addr is the address the registry listens on ("127.0.0.1:PORT"), or "" if
// it is not serving.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops serving, waiting for requests in flight until ctx ends, and
// stops the registry's background work.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.http
	s.mu.Unlock()
	var err error
	if srv != nil {
		err = srv.Shutdown(ctx)
		if err != nil {
			// Past the grace period: close what is left. A client's connection
			// that never sent a request (net/http waits 5 s for those) is no
			// failure of ours, so a timed-out grace period is not an error.
			_ = srv.Close()
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
				err = nil
			}
		}
	}
	if aerr := s.app.Shutdown(); aerr != nil && err == nil {
		err = aerr
	}
	if err != nil {
		return fmt.Errorf("registry: shutdown: %w", err)
	}
	return nil
}

// Close is Shutdown bounded by DefaultShutdownTimeout.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultShutdownTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// withWriteGate holds every request that may write (anything but GET, HEAD
// and OPTIONS) against garbage collection. A write without credentials is
// refused further in and neither waits for nor delays a collection.
func (s *Server) withWriteGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if ok, _ := s.access.authenticated(r); !ok {
			next.ServeHTTP(w, r)
			return
		}
		s.writes.RLock()
		defer s.writes.RUnlock()
		defer s.lastWrite.Store(time.Now().UnixNano())
		next.ServeHTTP(w, r)
	})
}
