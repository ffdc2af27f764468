// Package daemon wires Clank's parts into one process: the store, the Docker
// runtime, the edge router, the Clank registry, the engine, the SSH dashboard
// and the JSON API on a unix socket.
package daemon

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/certs"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/docker"
	"github.com/clank-dev/clank/engine/edge"
	"github.com/clank-dev/clank/internal/pubsub"
	"github.com/clank-dev/clank/registry"
	"github.com/clank-dev/clank/store"
)

// Version is the daemon's version, set by the build.
var Version = "dev"

// Config is the daemon's settings (README.md, "Configuration": flags and CLANK_* variables).
type Config struct {
	DataDir   string
	Socket    string // default <DataDir>/clank.sock
	HTTPAddr  string // the edge router
	HTTPSAddr string // the edge router over HTTPS, "" = no HTTPS
	ACMECA    string // ACME directory URL (certs.DefaultCA if "")
	ACMEEmail string // the ACME account's contact, "" for none
	// ACMERoots trusts the ACME CA's own HTTPS (a test CA); nil trusts the system's.
	ACMERoots *x509.CertPool
	// CertRetry is the first wait after a failed attempt at a certificate
	// (certs.DefaultRetryMin if 0); it doubles up to an hour.
	CertRetry time.Duration
	// Runtime is what deployments run on: RuntimeDocker ("" too) or
	// RuntimeSwarm (the Docker engine must be a Swarm manager).
	Runtime      string
	SSHAddr      string // "" = no SSH dashboard
	RegistryAddr string // "" = no Clank registry
	KeepImages   int    // local images kept per service after a deploy (engine.DefaultKeepImages if 0; -1 keeps all)
	KeepEvents   int    // lifecycle events kept per service (store.DefaultKeepEvents if 0; -1 keeps all)
	// KeepLogLines and KeepLogBytes bound the log kept per deployment from
	// its removed containers (store.DefaultKeepLogLines and
	// store.DefaultKeepLogBytes if 0; KeepLogLines -1 keeps none).
	KeepLogLines, KeepLogBytes int
	// Notify are the URLs that get a JSON POST for each deployment that ends,
	// watch trip, automatic rollback and crash (see notify.go).
	Notify       []string
	DrainTimeout time.Duration
	Logger       *slog.Logger
}

// Daemon is a running Clank.
type Daemon struct {
	cfg     Config
	Store   *store.Store
	Runtime *docker.Runtime
	Router  *edge.Router
	Engine  *engine.Engine
	log     *slog.Logger

	registry     *registry.Server
	registryAddr string
	sshAddr      atomic.Value // string: the SSH dashboard's address, set by whoever serves it

	hub       pubsub.Bus[api.Event]
	dockerErr error

	lock                    *os.File // held while the daemon runs: one daemon per data dir
	edgeLn, apiLn, tlsLn    net.Listener
	edgeSrv, tlsSrv, apiSrv *http.Server
	certs                   *certs.Manager // nil when HTTPS is off

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start opens the store, connects to Docker, reconciles, and starts serving
// the edge router and the API socket. A Docker engine that does not answer is
// reported (Status, every command) but does not stop the daemon.
func Start(ctx context.Context, cfg Config) (*Daemon, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("daemon: no data dir")
	}
	if cfg.Socket == "" {
		cfg.Socket = filepath.Join(cfg.DataDir, "clank.sock")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			d.Close(context.Background())
		}
	}()

	var err error
	if d.lock, err = lockDataDir(cfg.DataDir); err != nil {
		return nil, err
	}
	if d.apiLn, err = listenSocket(ctx, cfg.Socket); err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "clank.db"))
	if err != nil {
		return nil, err
	}
	st.SetKeepEvents(cfg.KeepEvents)
	st.SetKeepLogs(cfg.KeepLogLines, cfg.KeepLogBytes)
	d.Store = st
	d.Runtime, d.dockerErr = docker.Connect(ctx)
	if d.Runtime == nil {
		return nil, d.dockerErr
	}
	if d.dockerErr != nil {
		d.log.Warn("cannot reach the Docker engine: deployments are refused until it answers", "err", d.dockerErr)
	}
	var images engine.ImageChecker
	if cfg.RegistryAddr != "" {
		registry.SetLogger(d.log.With("part", "registry"))
		if d.registry, err = registry.NewServer(ctx, filepath.Join(cfg.DataDir, "registry")); err != nil {
			return nil, err
		}
		addr, err := d.registry.Start(cfg.RegistryAddr)
		if err != nil {
			return nil, fmt.Errorf("Clank registry on %s: %w", cfg.RegistryAddr, err)
		}
		d.registryAddr = addr.String()
		images = registry.NewImages(d.registryAddr)
	}
	d.Router = edge.New(edge.Options{Logger: d.log, RetryUnanswered: engine.RecoverHold})
	if cfg.HTTPAddr != "" {
		if d.edgeLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("edge router on %s: %w", cfg.HTTPAddr, err)
		}
	}
	rt, err := d.runtime(ctx)
	if err != nil {
		return nil, err
	}
	eopts := engine.Options{
		Store: st, Runtime: rt, Router: d.Router, Images: images,
		KeepImages: cfg.KeepImages, DrainTimeout: cfg.DrainTimeout, Logger: d.log,
	}
	if cfg.Runtime == RuntimeSwarm {
		eopts.RegistryAuth = d.swarmRegistryAuth
	}
	if cfg.HTTPSAddr != "" {
		if err := d.startCerts(); err != nil {
			return nil, err
		}
		eopts.Certificates = d.certs
	}
	d.Engine, err = engine.New(ctx, eopts)
	if err != nil {
		return nil, err
	}
	if err := d.Engine.Start(ctx); err != nil {
		if !errors.Is(err, engine.ErrUnavailable) {
			return nil, err
		}
		d.log.Warn("reconcile without Docker: routes restored from the store", "err", err)
	}
	d.forwardEvents()
	if len(cfg.Notify) > 0 {
		n := newNotifier(cfg.Notify, d.log)
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			n.run(d.ctx, d.hub.Subscribe)
		}()
	}

	d.apiSrv = &http.Server{Handler: d.apiHandler(), ReadHeaderTimeout: 10 * time.Second, ConnContext: peerContext,
		BaseContext: func(net.Listener) context.Context { return d.ctx }}
	// Streams (events, followed logs, a build's output) end when the daemon
	// does: Shutdown waits for handlers, and these would hold it to its timeout.
	d.apiSrv.RegisterOnShutdown(d.cancel)
	d.serve(d.apiSrv, d.apiLn)
	edgeOpts := edge.ServerOptions{Logger: d.log.With("part", "edge")}
	if d.edgeLn != nil {
		var h http.Handler = d.Router
		if d.certs != nil {
			h = d.certs.HTTPHandler(d.Router) // ACME HTTP-01 challenges, redirects to HTTPS
		}
		d.edgeSrv = edge.NewServer(h, edgeOpts)
		d.serve(d.edgeSrv, d.edgeLn)
	}
	if d.tlsLn != nil {
		d.tlsSrv = edge.NewServer(d.Router, edgeOpts)
		d.tlsSrv.TLSConfig = d.certs.TLSConfig()
		d.serve(d.tlsSrv, d.tlsLn)
	}
	ok = true
	d.log.Info("clank is up", "socket", cfg.Socket, "router", d.RouterAddr(), "data", cfg.DataDir)
	return d, nil
}

func (d *Daemon) serve(srv *http.Server, ln net.Listener) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		serve := srv.Serve
		if srv.TLSConfig != nil {
			serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
		}
		if err := serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("server stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()
}

// forwardEvents turns engine events into API events once, for every subscriber.
func (d *Daemon) forwardEvents() {
	ch := d.Engine.Subscribe(d.ctx)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		for {
			ev, ok := <-ch
			if !ok {
				if d.ctx.Err() != nil {
					return
				}
				ch = d.Engine.Subscribe(d.ctx) // cut off: never happens to a prompt reader, but be safe
				continue
			}
			d.hub.Publish(d.apiEvent(ev), func(e *api.Event, seq int64) { e.Seq = seq })
		}
	}()
}

func (d *Daemon) apiEvent(ev engine.Event) api.Event {
	out := api.Event{Type: ev.Type, Service: ev.Service, Status: string(ev.Status), Message: ev.Message, At: ev.At}
	if ev.Deployment != nil {
		out.DeploymentID = ev.Deployment.ID
		active := ""
		if svc, err := d.Engine.Service(d.ctx, ev.Service); err == nil {
			active = svc.ActiveDeploymentID
		}
		v := view{e: d.Engine}
		dep := v.deployment(d.ctx, *ev.Deployment, active)
		if rs := ev.Runtime; rs != nil {
			// The runtime as it was at the change, not as it is now.
			since := rs.Since
			dep.Runtime, dep.RuntimeReason, dep.RuntimeSince = &rs.State, rs.Reason, &since
			dep.Restarts, dep.LastExit = rs.Restarts, optional(rs.LastExit)
			dep.HealthyReplicas, dep.Containers = rs.Healthy(), replicas(rs)
		}
		out.Deployment = &dep
		if out.Status == "" {
			out.Status = dep.Status
		}
	}
	return out
}

// Status reports the daemon's parts.
func (d *Daemon) Status(ctx context.Context) api.Status {
	host, _ := os.Hostname()
	s := api.Status{Host: host, Docker: "ok", Router: d.RouterAddr(), HTTPS: "off", Registry: "off", SSH: "off", Version: Version, Runtime: RuntimeDocker}
	if d.Engine.SwarmMode() {
		s.Runtime = RuntimeSwarm
	}
	if addr := d.HTTPSAddr(); addr != "" {
		s.HTTPS = addr
	}
	if d.registryAddr != "" {
		s.Registry = d.registryAddr
	}
	if addr, _ := d.sshAddr.Load().(string); addr != "" {
		s.SSH = addr
	}
	if err := d.Engine.Ping(ctx); err != nil {
		s.Docker = err.Error()
	}
	if ds := d.Engine.Docker(); !ds.Since.IsZero() {
		since := ds.Since
		s.DockerUp, s.DockerSince = ds.Up, &since
	}
	return s
}

// RouterAddr is the edge router's address ("" if it does not listen).
func (d *Daemon) RouterAddr() string {
	if d.edgeLn == nil {
		return ""
	}
	return d.edgeLn.Addr().String()
}

// HTTPSAddr is the edge router's HTTPS address ("" if HTTPS is off).
func (d *Daemon) HTTPSAddr() string {
	if d.tlsLn == nil {
		return ""
	}
	return d.tlsLn.Addr().String()
}

// SetSSHAddr records where the SSH dashboard listens, for Status.
func (d *Daemon) SetSSHAddr(addr string) { d.sshAddr.Store(addr) }

// RegistryAddr is the Clank registry's address ("" if it is off).
func (d *Daemon) RegistryAddr() string { return d.registryAddr }

// Socket is the API socket's path.
func (d *Daemon) Socket() string { return d.cfg.Socket }

// Close stops serving and waits for the engine's work to end. Containers keep
// running; the next start reconciles them.
func (d *Daemon) Close(ctx context.Context) error {
	for _, srv := range []*http.Server{d.apiSrv, d.edgeSrv, d.tlsSrv} {
		if srv != nil {
			sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = srv.Shutdown(sctx)
			cancel()
		}
	}
	if d.apiLn != nil {
		d.apiLn.Close()
	}
	for _, ln := range []net.Listener{d.edgeLn, d.tlsLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if d.Engine != nil {
		d.Engine.Close()
	}
	if d.certs != nil {
		d.certs.Close()
	}
	if d.registry != nil {
		d.registry.Close()
	}
	if d.cancel != nil {
		d.cancel()
	}
	d.wg.Wait()
	if d.Runtime != nil {
		d.Runtime.Close()
	}
	if d.Store != nil {
		d.Store.Close()
	}
	if d.lock != nil {
		d.lock.Close()
	}
	return nil
}
