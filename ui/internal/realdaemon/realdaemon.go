// Package realdaemon gives the dashboard's integration tests a real Clank: a
// daemon (store, Docker, edge router, engine, API socket) on a temporary data
// dir, with one service deployed twice from sample app images, so that the
// dashboard, locally or over SSH, has a real rollback to make.
package realdaemon

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clank-dev/clank/api"
	"github.com/clank-dev/clank/daemon"
	"github.com/clank-dev/clank/engine"
	"github.com/clank-dev/clank/internal/testdocker"
)

// Service is the name of the service World deploys.
const Service = "web"

// deployWithin bounds one deployment of the sample app, from Act to ACTIVE.
const deployWithin = 30 * time.Second

// World is a running daemon with Service deployed twice: Old (the sample app
// at version "v1", now INACTIVE) and then Current (version "v2", ACTIVE).
type World struct {
	t        testing.TB
	Daemon   *daemon.Daemon
	Client   *api.Client
	OldImage string
	NewImage string
	Old      api.Deployment
	Current  api.Deployment
}

// Start starts the daemon on t.TempDir() (edge router on 127.0.0.1, no SSH
// dashboard, no registry), creates Service and deploys it twice through the
// API client. It skips without Docker (fails with CLANK_REQUIRE_DOCKER=1).
// The daemon, its containers and the images go when the test ends.
func Start(t testing.TB) *World {
	t.Helper()
	return StartWith(t, Setup{})
}

// Setup varies the world Start makes.
type Setup struct {
	// OldLabels and NewLabels are image labels of the v1 and v2 images
	// (dev.clank.schema, for one).
	OldLabels, NewLabels map[string]string
}

// StartWith is Start with the images set up as told.
func StartWith(t testing.TB, setup Setup) *World {
	t.Helper()
	rt := testdocker.Require(t)
	w := &World{t: t, OldImage: testdocker.SampleImageLabelled(t, rt, "v1", setup.OldLabels),
		NewImage: testdocker.SampleImageLabelled(t, rt, "v2", setup.NewLabels)}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := daemon.Start(ctx, daemon.Config{
		DataDir:      t.TempDir(),
		HTTPAddr:     "127.0.0.1:0",
		KeepImages:   -1, // the test images are the test's to remove
		DrainTimeout: time.Second,
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("start the daemon: %v", err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		_ = d.Close(cctx)
	})
	// Runs before the daemon closes: every container it started goes.
	testdocker.Cleanup(t, rt, map[string]string{engine.LabelOwner: d.Engine.Owner()})
	w.Daemon, w.Client = d, api.NewClient(d.Socket())

	port, path, interval, timeout, deadline := testdocker.SampleAppPort, "/healthz", "200ms", "1s", "30s"
	if _, err := w.Client.CreateService(ctx, api.ServiceSpec{Name: Service, Image: &w.OldImage, Port: &port,
		HealthPath: &path, HealthInterval: &interval, HealthTimeout: &timeout, DeployTimeout: &deadline}); err != nil {
		t.Fatalf("create %s: %v", Service, err)
	}
	w.Old = w.deploy(w.OldImage)
	w.Current = w.deploy(w.NewImage)
	if got := w.Get("/"); got != "hello from v2" {
		t.Fatalf("after deploying v2 the router serves %q", got)
	}
	return w
}

// deploy deploys image as Service and waits until it is ACTIVE.
func (w *World) deploy(image string) api.Deployment {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deployWithin)
	defer cancel()
	d, err := w.Client.Act(ctx, api.ActionRequest{Kind: "deploy", Service: Service, Image: image, TriggeredBy: "setup"})
	if err != nil {
		w.t.Fatalf("deploy %s: %v", image, err)
	}
	return w.WaitStatus(d.ID, "ACTIVE", deployWithin)
}

// WaitStatus polls the API until deployment id has status want, and fails
// the test if it ends otherwise (FAILED, CANCELLED) or takes longer than within.
func (w *World) WaitStatus(id, want string, within time.Duration) api.Deployment {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for {
		d, _, err := w.Client.Deployment(ctx, id)
		switch {
		case err == nil && d.Status == want:
			return d
		case err == nil && (d.Status == "FAILED" || d.Status == "CANCELLED"):
			w.t.Fatalf("deployment #%d %s: %s %s, want %s", d.Number, id, d.Status, d.FailureReason, want)
		}
		select {
		case <-ctx.Done():
			w.t.Fatalf("deployment %s: status %q (err %v), want %s within %s", id, d.Status, err, want, within)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Deployments lists Service's deployments, newest first.
func (w *World) Deployments() []api.Deployment {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ds, err := w.Client.Deployments(ctx, Service, 1000, 0)
	if err != nil {
		w.t.Fatalf("list %s's deployments: %v", Service, err)
	}
	return ds
}

// Newest waits until Service has more than n deployments and returns the
// newest: the one an action just created.
func (w *World) Newest(n int) api.Deployment {
	w.t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ds := w.Deployments(); len(ds) > n {
			return ds[0]
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: no deployment after #%d within 10s", Service, n)
		}
	}
}

// Get requests path through the edge router for Service's default domain
// and returns the body of a 200 answer.
func (w *World) Get(path string) string {
	w.t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+w.Daemon.RouterAddr()+path, nil)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Host = Service + ".localhost"
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		w.t.Fatalf("GET %s%s through the router: %v", req.Host, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		w.t.Fatalf("GET %s%s through the router: %s %q %v", req.Host, path, resp.Status, body, err)
	}
	return strings.TrimSpace(string(body))
}

// StaysAt checks, for a moment, that Service keeps exactly n deployments:
// what a cancelled modal must leave behind even if an action were on its way.
func (w *World) StaysAt(n int) {
	w.t.Helper()
	for end := time.Now().Add(300 * time.Millisecond); ; time.Sleep(50 * time.Millisecond) {
		if ds := w.Deployments(); len(ds) != n {
			w.t.Fatalf("%s has %d deployments, want %d", Service, len(ds), n)
		}
		if time.Now().After(end) {
			return
		}
	}
}
