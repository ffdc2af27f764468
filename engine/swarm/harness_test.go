package swarm_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dockerregistry "github.com/moby/moby/api/types/registry"

	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/engine/docker"
	"github.com/clank-dev/clank/engine/edge"
	"github.com/clank-dev/clank/engine/swarm"
	"github.com/clank-dev/clank/internal/testdocker"
	"github.com/clank-dev/clank/internal/testload"
	"github.com/clank-dev/clank/registry"
	"github.com/clank-dev/clank/store"
)

// harness is a real engine on a real single-node Swarm: a SQLite file, the
// Docker engine as a Swarm manager, the embedded Clank registry the Swarm's
// nodes pull from, and the edge router serving on 127.0.0.1.
type harness struct {
	t      testing.TB
	docker *docker.Runtime
	rt     *swarm.Runtime
	store  *store.Store
	router *edge.Router
	eng    *engine.Engine
	addr   string // the edge router
	client *http.Client
	reg    string // the Clank registry's address
	auth   dockerregistry.AuthConfig
	// stop closes the engine and removes what it runs (once): before the
	// images go, or removing an image would fight Swarm over its tasks.
	stop func()
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessOn(t, true)
}

// newHarnessOn is newHarness on Swarm, or on the plain Docker runtime (as
// `clank serve` without --runtime swarm) to compare with.
func newHarnessOn(t testing.TB, onSwarm bool) *harness {
	t.Helper()
	h := &harness{t: t, docker: testdocker.Require(t)}
	var rt engine.Runtime = h.docker
	if onSwarm {
		testdocker.Swarm(t, h.docker)
		srt, err := swarm.New(context.Background(), h.docker)
		if err != nil {
			t.Fatal(err)
		}
		h.rt, rt = srt, srt
	}

	srv, err := registry.NewServer(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	regAddr, err := srv.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c := srv.Credential()
	h.reg = regAddr.String()
	h.auth = dockerregistry.AuthConfig{Username: c.Username, Password: c.Password, ServerAddress: h.reg}

	st, err := store.Open(filepath.Join(t.TempDir(), "clank.db"))
	if err != nil {
		t.Fatal(err)
	}
	h.store = st
	h.router = edge.New(edge.Options{RetryUnanswered: engine.RecoverHold})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h.router}
	go hs.Serve(ln)
	h.addr = ln.Addr().String()
	h.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	e, err := engine.New(context.Background(), engine.Options{
		Store: st, Runtime: rt, Router: h.router, Images: registry.NewImages(h.reg),
		DrainTimeout: 5 * time.Second, StopGrace: time.Second, KeepImages: -1,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.eng = e
	h.stop = sync.OnceFunc(func() {
		h.eng.Close()
		if onSwarm {
			h.removeServices()
		} else {
			testdocker.RemoveContainers(t, h.docker, map[string]string{engine.LabelOwner: h.eng.Owner()})
		}
	})
	t.Cleanup(func() {
		h.stop()
		hs.Close()
		st.Close()
	})
	return h
}

// removeServices removes the Swarm services of this test's engine.
func (h *harness) removeServices() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svcs, err := h.rt.Services(ctx, map[string]string{engine.LabelOwner: h.eng.Owner()})
	if err != nil {
		h.t.Errorf("clean up Swarm services: %v", err)
		return
	}
	for _, s := range svcs {
		if err := h.rt.RemoveService(ctx, s.Name); err != nil {
			h.t.Errorf("clean up Swarm service %s: %v", s.Name, err)
		}
	}
	// Swarm removes the tasks' containers after the call returns.
	for _, s := range svcs {
		for ctx.Err() == nil {
			cs, err := h.docker.List(ctx, map[string]string{engine.LabelSwarmService: s.Name})
			if err != nil || len(cs) == 0 {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// image builds the sample app at version and pushes it to the Clank
// registry as <registry>/name:version, which it returns.
func (h *harness) image(name, version string) string {
	h.t.Helper()
	src := testdocker.SampleImage(h.t, h.docker, version)
	ref := h.reg + "/" + name + ":" + version
	ctx := context.Background()
	if err := h.docker.TagImage(ctx, src, ref); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { testdocker.RemoveImage(h.t, h.docker, ref) })
	h.t.Cleanup(h.stop) // runs before the images' clean-up
	if err := h.docker.PushImage(ctx, ref, h.auth, nil); err != nil {
		h.t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// service creates a service of image with test settings (no warm standby).
func (h *harness) service(name, image string) store.Service {
	h.t.Helper()
	return h.serviceN(name, image, 1)
}

// serviceN is service at n replicas.
func (h *harness) serviceN(name, image string, n int) store.Service {
	h.t.Helper()
	policy := store.DefaultPolicy()
	policy.KeepWarm = false
	svc, err := h.eng.CreateServiceWith(context.Background(), name, store.Config{
		Image: image, Port: testdocker.SampleAppPort,
		Health:        store.HealthCheck{Path: "/healthz", Interval: 200 * time.Millisecond, Timeout: time.Second},
		DeployTimeout: 60 * time.Second,
	}, policy, n)
	if err != nil {
		h.t.Fatal(err)
	}
	return svc
}

// scale runs service at n replicas (clank scale).
func (h *harness) scale(service string, n int) store.Deployment {
	h.t.Helper()
	d, err := h.eng.Scale(context.Background(), service, n, "test")
	if err != nil {
		h.t.Fatalf("scale %s to %d: %v", service, n, err)
	}
	return d
}

// act starts req and waits for the deployment to end (ACTIVE or FAILED).
func (h *harness) act(req engine.Request) store.Deployment {
	h.t.Helper()
	if req.TriggeredBy == "" {
		req.TriggeredBy = "test"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	events := h.eng.Subscribe(ctx)
	d, err := h.eng.Act(ctx, req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Kind, req.Service, err)
	}
	for {
		select {
		case ev := <-events:
			if ev.Deployment != nil && ev.Deployment.ID == d.ID && (ev.Deployment.Status == store.StatusActive || ev.Deployment.Status == store.StatusFailed) {
				return *ev.Deployment
			}
		case <-ctx.Done():
			h.t.Fatalf("deployment %s did not end", d.ID)
		}
	}
}

// get sends GET path through the edge router for service's domain.
func (h *harness) get(service, path string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.addr+path, nil)
	req.Host = service + ".localhost"
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
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
