package engine_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/docker"
	"github.com/clank-dev/clank/engine/edge"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/internal/testload"
	"github.com/clank-dev/clank/store"
)

// harness is a real engine: a SQLite file, the Docker engine, and the edge
// router serving on 127.0.0.1.
type harness struct {
	t      testing.TB
	rt     *docker.Runtime
	store  *store.Store
	router *edge.Router
	eng    *engine.Engine
	addr   string // the edge router
	client *http.Client
	dbPath string
	tweak  []func(*engine.Options)
}

// newHarness starts an engine; tweaks change its options (every restart too).
func newHarness(t testing.TB, tweaks ...func(*engine.Options)) *harness {
	t.Helper()
	h := &harness{t: t, rt: testdocker.Require(t), tweak: tweaks}
	h.dbPath = filepath.Join(t.TempDir(), "clank.db")
	st, err := store.Open(h.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	h.store = st
	h.router = edge.New(edge.Options{RetryUnanswered: engine.RecoverHold})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h.router}
	go srv.Serve(ln)
	h.addr = ln.Addr().String()
	h.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	h.start()
	// The engine stops first (clean-ups run last in, first out), so that no
	// supervisor starts a container again while they are removed.
	testdocker.Cleanup(t, h.rt, map[string]string{engine.LabelOwner: h.eng.Owner()})
	t.Cleanup(func() {
		h.eng.Close()
		srv.Close()
		st.Close()
	})
	return h
}

// start (re)makes the engine on the same store, as a daemon restart would.
func (h *harness) start() {
	h.t.Helper()
	opts := engine.Options{
		Store: h.store, Runtime: h.rt, Router: h.router,
		DrainTimeout: 5 * time.Second, StopGrace: time.Second, KeepImages: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range h.tweak {
		f(&opts)
	}
	e, err := engine.New(context.Background(), opts)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	h.eng = e
}

// service creates a service running image with sensible test settings. Its
// replaced deployments are not kept warm, so that a test sees each container
// go after its drain; tests of the warm standby turn it on.
func (h *harness) service(name, image string, env map[string]string) store.Service {
	h.t.Helper()
	policy := store.DefaultPolicy()
	policy.KeepWarm = false
	svc, err := h.eng.CreateServiceWith(context.Background(), name, store.Config{
		Image: image, Port: testdocker.SampleAppPort, Env: env,
		Health:        store.HealthCheck{Path: "/healthz", Interval: 200 * time.Millisecond, Timeout: time.Second},
		DeployTimeout: 30 * time.Second,
	}, policy, 1)
	if err != nil {
		h.t.Fatal(err)
	}
	return svc
}

// act starts req and waits for the deployment to end (ACTIVE or FAILED).
func (h *harness) act(req engine.Request) store.Deployment {
	h.t.Helper()
	d, err := h.tryAct(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Kind, req.Service, err)
	}
	return d
}

func (h *harness) tryAct(req engine.Request) (store.Deployment, error) {
	h.t.Helper()
	if req.TriggeredBy == "" {
		req.TriggeredBy = "test"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events := h.eng.Subscribe(ctx)
	d, err := h.eng.Act(ctx, req)
	if err != nil {
		return d, err
	}
	return h.waitEnd(ctx, events, d.ID), nil
}

func (h *harness) waitEnd(ctx context.Context, events <-chan engine.Event, id string) store.Deployment {
	h.t.Helper()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				h.t.Fatalf("event stream closed while waiting for %s", id)
			}
			if ev.Deployment != nil && ev.Deployment.ID == id && (ev.Deployment.Status == store.StatusActive || ev.Deployment.Status == store.StatusFailed) {
				return *ev.Deployment
			}
		case <-ctx.Done():
			d, _ := h.store.GetDeployment(context.Background(), id)
			h.t.Fatalf("deployment %s did not end: %s", id, d.Status)
		}
	}
}

// get sends a request through the edge router for service's domain.
func (h *harness) get(service, path string) (int, string, error) {
	return h.getWith(h.client, service, path)
}

// getWith is get with another HTTP client.
func (h *harness) getWith(hc *http.Client, service, path string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.addr+path, nil)
	req.Host = service + ".localhost"
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

func (h *harness) mustGet(service, path string) string {
	h.t.Helper()
	code, body, err := h.get(service, path)
	if err != nil || code != http.StatusOK {
		h.t.Fatalf("GET %s%s through the router: %d %q %v", service, path, code, body, err)
	}
	return body
}

// waitStatus polls the store until deployment id has status.
func (h *harness) waitStatus(id string, want store.Status, within time.Duration) store.Deployment {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		d, err := h.store.GetDeployment(context.Background(), id)
		if err == nil && d.Status == want {
			return d
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("deployment %s: status %s, want %s within %s", id, d.Status, want, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// deployments counts service's deployment records.
func (h *harness) deployments(service string) int {
	h.t.Helper()
	n, err := h.store.CountDeployments(context.Background(), service)
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// containers lists this engine's containers.
func (h *harness) containers() []engine.Container {
	h.t.Helper()
	cs, err := h.rt.List(context.Background(), map[string]string{engine.LabelOwner: h.eng.Owner()})
	if err != nil {
		h.t.Fatal(err)
	}
	return cs
}

func names(ds []store.Deployment) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "#%d %s; ", d.Number, d.Status)
	}
	return b.String()
}

// eventually polls cond until it holds or within passes, then fails with what.
func (h *harness) eventually(within time.Duration, what func() string, cond func() bool) {
	h.t.Helper()
	testload.Eventually(h.t, within, what, cond)
}

// load runs clients in a closed loop, each sending GET / for service through
// the edge router and passing every answer to seen (which must be safe for
// concurrent use), until the returned stop is called (or testload.Bound
// passes, so that a hung test still ends). stop waits for the clients and
// returns how many requests they sent.
func (h *harness) load(service string, clients int, seen func(code int, body string, err error)) (stop func() int64) {
	return testload.Run(clients, func() (int, string, error) { return h.get(service, "/") }, seen)
}
