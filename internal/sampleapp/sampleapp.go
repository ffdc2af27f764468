// Package sampleapp is a tiny HTTP service for tests and demos: it answers
// with its version, has a health endpoint that can be told to fail or to start
// late, echoes its environment, and serves slow, streaming and upgraded
// requests so that cutovers and drains can be watched. It can also misbehave
// on demand, to show what Clank does after a cutover: answer 500, fail its
// health check from some moment on, crash, or allocate past its memory limit.
// It has no dependencies beyond the standard library, so it builds as a
// static binary for a FROM scratch image.
package sampleapp

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// Defaults, overridden by the environment.
const (
	DefaultPort    = 8080
	DefaultVersion = "dev"
	// ShutdownTimeout bounds how long in-flight requests may run after SIGTERM.
	ShutdownTimeout = 10 * time.Second
)

// config is what the environment tells the app.
type config struct {
	version    string
	healthFail bool          // HEALTH=fail: /healthz answers 500
	readyAfter time.Duration // READY_AFTER: /healthz answers 503 until then
	status     int           // STATUS: / answers with this status (500: a bad release)
	crashAfter time.Duration // CRASH_AFTER: the process exits with code 3 this long after it starts
	started    time.Time
	lookupEnv  func(string) (string, bool)
	exit       func(code int) // os.Exit, or a test's stand-in
}

// Main runs the app until SIGTERM or SIGINT, then lets in-flight requests
// finish (for up to ShutdownTimeout). It reads PORT, VERSION, HEALTH,
// READY_AFTER, STATUS and CRASH_AFTER from the environment; -addr overrides
// PORT.
func Main(args []string) error {
	cfg, port, err := configFromEnv()
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("sampleapp", flag.ContinueOnError)
	addr := fs.String("addr", ":"+strconv.Itoa(port), "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	logger := log.New(os.Stdout, "", log.LstdFlags)
	if cfg.crashAfter > 0 {
		time.AfterFunc(cfg.crashAfter, func() {
			logger.Printf("sampleapp %s crashing on purpose (CRASH_AFTER=%s)", cfg.version, cfg.crashAfter)
			os.Exit(3)
		})
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("sampleapp: %w", err)
	}
	srv := &http.Server{Handler: logRequests(logger, newHandler(cfg)), ReadHeaderTimeout: 10 * time.Second}
	logger.Printf("sampleapp %s listening on %s", cfg.version, ln.Addr())

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("sampleapp: %w", err)
	case <-ctx.Done():
	}
	logger.Printf("sampleapp %s shutting down", cfg.version)
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("sampleapp: shutdown: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("sampleapp: %w", err)
	}
	return nil
}

// configFromEnv reads the app's settings from the environment.
func configFromEnv() (config, int, error) {
	cfg := config{
		version:    DefaultVersion,
		healthFail: os.Getenv("HEALTH") == "fail",
		started:    time.Now(),
		lookupEnv:  os.LookupEnv,
		exit:       os.Exit,
	}
	if v := os.Getenv("VERSION"); v != "" {
		cfg.version = v
	}
	for name, dst := range map[string]*time.Duration{"READY_AFTER": &cfg.readyAfter, "CRASH_AFTER": &cfg.crashAfter} {
		if v := os.Getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return config{}, 0, fmt.Errorf("sampleapp: %s=%q: %w", name, v, err)
			}
			*dst = d
		}
	}
	if v := os.Getenv("STATUS"); v != "" {
		code, err := strconv.Atoi(v)
		if err != nil || code < 200 || code > 599 {
			return config{}, 0, fmt.Errorf("sampleapp: STATUS=%q is not an HTTP status", v)
		}
		cfg.status = code
	}
	port := DefaultPort
	if v := os.Getenv("PORT"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || p < 1 || p > 65535 {
			return config{}, 0, fmt.Errorf("sampleapp: PORT=%q is not a TCP port", v)
		}
		port = p
	}
	return cfg, port, nil
}

// logRequests logs every request but the health probes, which would drown the rest.
func logRequests(logger *log.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			logger.Printf("%s %s", r.Method, r.URL.RequestURI())
		}
		next.ServeHTTP(w, r)
	})
}
